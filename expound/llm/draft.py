"""A draft: one completion as the model wrote it, shared by drafting and ranking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Draft:
    """One candidate as the model wrote it."""

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    finish_reason: str = ""
    index: int = 0
    style: str = ""  # the plan style of the grammar it was drafted from ("" in free mode)

    @property
    def mean_logprob(self) -> float | None:
        """Mean per-token log-likelihood (None if the backend returned none)."""
        if not self.token_logprobs:
            return None
        return sum(self.token_logprobs) / len(self.token_logprobs)
