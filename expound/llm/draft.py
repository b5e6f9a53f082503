"""A draft: one completion as the model wrote it, shared by drafting and ranking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Draft:
    """One candidate as the model wrote it.

    ``token_logprobs`` are the tokens the model decoded: the whole text in one-request
    drafting, only the tokens it chose at choice points in jump-forward drafting (forced
    text is never decoded). ``style`` is the plan its grammar followed; ``chose`` the
    alternatives it took ("rule=index"), where the decoding knows them.
    """

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    finish_reason: str = ""
    index: int = 0
    style: str = ""  # the plan style of the grammar it was drafted from ("" in free mode)
    chose: tuple[str, ...] = ()  # the alternatives the model took at each choice point (jump)

    @property
    def mean_logprob(self) -> float | None:
        """Mean per-token log-likelihood (None if the backend returned none)."""
        if not self.token_logprobs:
            return None
        return sum(self.token_logprobs) / len(self.token_logprobs)
