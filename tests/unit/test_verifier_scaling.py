"""The verifier reads in linear time: a long candidate cannot stall the ranker (issue 12)."""

from __future__ import annotations

import time
from typing import Any

from expound.models.registry import ModelRegistry
from expound.rankers.gate import verify
from tests.conftest import GBM
from tests.support.facts_util import facts_for

# Sentences of every kind the verifier reads: mentions, directions, values, numbers, a
# decision, an importance cue, a hypothetical and a protected attribute.
SENTENCES = (
    "Your application was declined.",
    "The main reason was the length of the loan term (48 months), which raised the risk.",
    "Your checking account being overdrawn also counted against you, followed by savings.",
    "A shorter term could lower the risk, but your age was not considered.",
    "Employment below 1 year pushed the estimated risk up by 0.4.",
)


def text_of(sentences: int) -> str:
    return " ".join(SENTENCES[i % len(SENTENCES)] for i in range(sentences))


def seconds_to_verify(facts: Any, text: str) -> float:
    best = float("inf")
    for _ in range(2):  # the faster of two: a busy machine slows one run, rarely both
        started = time.perf_counter()
        verify(facts, text)
        best = min(best, time.perf_counter() - started)
    return best


def test_four_times_the_text_costs_well_under_eight_times_the_time(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant)
    verify(facts, text_of(10))  # compile and cache the word-list patterns
    short = seconds_to_verify(facts, text_of(500))
    long = seconds_to_verify(facts, text_of(2000))
    # Linear is 4x, quadratic 16x; 8x leaves room for noise on a shared machine.
    assert long < 8 * short, f"500 sentences {short:.3f} s, 2,000 sentences {long:.3f} s"
