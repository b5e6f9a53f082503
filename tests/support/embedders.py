"""An embedder for tests that need to see which texts reached the model."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from expound.rankers.embedding import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, remembering every text that reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.seen += texts
        return super().embed(texts)
