"""Pieces of an eval's results for tests of its report (bench.eval.table)."""

from __future__ import annotations

from typing import Any


def clean_mutations() -> dict[str, Any]:
    """A mutation-suite section in which every mutant was rejected."""
    return {
        "faithful_pass_rate": 1.0,
        "rejection_rate": {},
        "mutants": {},
        "ranker_faithful_first_rate": 1.0,
        "decisions_with_a_passing_mutant": 0,
        "ranker_faithful_first_rate_there": None,
    }
