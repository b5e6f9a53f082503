"""Rank accuracy against the order a text claims, for ``make eval``.

The paper's rank accuracy (arXiv 2412.10220) compares the order in which a narrative first
mentions the top features with their |SHAP| order. Applied as is to texts that follow a
content plan it measured 0.66 (applicant) and 0.80 (compliance) on texts whose every order
claim is true, because it reads an order into places where the text claims none:

- a counterfactual ("with a 24-month term instead of 48, ...") names features to say what
  would have changed, not how much they weighed;
- a factor introduced as pushing the other way ("In the opposite direction, ...") is not
  claimed to weigh less than the reasons before it: an approval lists what helped, most
  important first, then the largest factor against, which may be larger than all of them;
- a principal reason is ranked by its group's contribution (the adverse-action order the
  law asks for), and its lead feature alone may weigh less than the next reason's;
- the plan's factors that no reason covers are listed after the reasons, in their own
  |contribution| order; a text that lists the reasons by code and then the factors "by
  size of contribution" ranks as reasons only what it names in the code list;
- a text that answers the factor asked about first claims no order for it.

So the claimed-order accuracy splits a text's factual mentions of the top-4 features into
the runs it ranks (one per direction; for reason-led texts, reasons apart from the rest),
and within each run compares the order of first mention with the true order (reason rank,
else |contribution|): the fraction of features in their true place. Analyst texts claim
the plan's order across both directions, so for them the run is the whole text. The raw
measure stays in the report beside it.
"""

from __future__ import annotations

import re

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.openers import sentences
from expound.rankers.gate import verify
from expound.rankers.reading import lexicon, pattern
from expound.rankers.routing import asked_factors

COUNTERFACTUAL = re.compile(r"\binstead of\b|\bwould have been\b|\bhad been\b|\bno change\b")


def factual_mentions(facts: DecisionFacts, text: str) -> list[str]:
    """The features a text names in sentences that state facts (counterfactuals and
    hypotheticals excluded), in order of first mention."""
    hypothetical = pattern(lexicon()["hypotheticals"])
    seen: list[str] = []
    for sentence in sentences(text):
        lowered = sentence.lower()
        if COUNTERFACTUAL.search(lowered) or hypothetical.search(lowered):
            continue
        # The gate's reading of mentions: a value quoted inside another's is no mention.
        for feature in verify(facts, sentence).mentioned:
            if feature not in seen:
                seen.append(feature)
    return seen


def _reason_rank(facts: DecisionFacts, text: str) -> dict[str, int]:
    """The reason rank of each feature the text ranks as a reason. A text that lists the
    reasons by code ("CHK01: ...; EMP07: ...") ranks as reasons only the features it names
    in that list: a later list "by size of contribution" ranks the same features by
    |contribution|, and a reason's group may outweigh a feature that alone weighs more."""
    ranks: dict[str, int] = {}
    for reason in facts.reasons:
        for feature in reason.features:
            ranks.setdefault(feature, reason.rank)
    codes = pattern([r.code for r in facts.reasons]) if facts.reasons else None
    if codes is None or not codes.search(text.lower()):
        return ranks
    listed = {
        feature
        for sentence in sentences(text)
        if codes.search(sentence.lower())
        for feature in verify(facts, sentence).mentioned
    }
    return {feature: rank for feature, rank in ranks.items() if feature in listed}


def claimed_order_accuracy(facts: DecisionFacts, text: str, style: str = "") -> float | None:
    """The share of the top-4 features a text names in their true place within the runs
    it ranks (see the module docstring); None when it names none of them."""
    top = {f.feature for f in facts.top}
    named = [f for f in factual_mentions(facts, text) if f in top]
    if style == "question_first":
        asked = set(asked_factors(facts))
        named = [f for f in named if f not in asked]
    if not named:
        return None
    reasons = (
        _reason_rank(facts, text)
        if facts.prediction.adverse and facts.audience is not Audience.ANALYST
        else {}
    )
    runs: dict[tuple[bool, bool], list[str]] = {}
    for feature in named:
        if facts.audience is Audience.ANALYST:
            key = (True, False)
        else:
            key = (facts.factors[feature].raises_risk, feature in reasons)
        runs.setdefault(key, []).append(feature)
    hits = 0
    for run in runs.values():
        truth = sorted(
            run,
            key=lambda f: (reasons.get(f, 0), -abs(facts.factors[f].contribution)),
        )
        hits += sum(stated == true for stated, true in zip(run, truth, strict=True))
    return hits / len(named)
