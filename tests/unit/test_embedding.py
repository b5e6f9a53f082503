"""The sentence-cached embedder: only unseen sentences reach the model."""

from __future__ import annotations

import numpy as np

from expound.rankers.embedding import HashingEmbedder, SentenceCachedEmbedder
from tests.support.embedders import CountingEmbedder


def test_only_new_sentences_are_embedded() -> None:
    inner = CountingEmbedder()
    cached = SentenceCachedEmbedder(inner)
    first = cached.embed(["Your application was declined. The term raised the risk.", "Short."])
    assert sorted(inner.seen) == [
        "Short.",
        "The term raised the risk.",
        "Your application was declined.",
    ]
    inner.seen.clear()
    again = cached.embed(["Your application was declined. Savings helped.", "Short."])
    assert inner.seen == ["Savings helped."]
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)
    assert np.allclose(first[1], again[1])


def test_document_vector_is_the_normalised_mean_of_its_sentences() -> None:
    inner = HashingEmbedder()
    cached = SentenceCachedEmbedder(inner)
    (document,) = cached.embed(["Alpha beta. Gamma delta."])
    parts = inner.embed(["Alpha beta.", "Gamma delta."]).mean(axis=0)
    assert np.allclose(document, parts / np.linalg.norm(parts), atol=1e-6)


def test_cache_is_bounded() -> None:
    inner = CountingEmbedder()
    cached = SentenceCachedEmbedder(inner, max_sentences=2)
    cached.embed(["One. Two. Three."])
    inner.seen.clear()
    cached.embed(["One."])
    assert inner.seen == ["One."]
