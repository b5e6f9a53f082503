"""Which factor a stated value belongs to, so that a text cannot swap two factors' values.

While the gate checks one factor's value it blanks every value the decision actually has
(:mod:`expound.models.wording` says why), so "the co-applicant or guarantor (with a bank);
the other instalment plans (neither)", where the two actual values traded places, would
read as naming no value of either, and pass. Here each quoted actual value is bound to the
factor its clause names closest to it: the one just before it ("the loan term (48
months)"), or the one just after it when that is closer ("savings of 100 to 500 DM and a
balance between 0 and 200 DM checking account"); a value bound to a factor it is not the
value of is a wrong value of that factor. The manifest guarantees that each wording is the
value of one feature only.
"""

from __future__ import annotations

import bisect

from expound.explainers.facts import DecisionFacts
from expound.models.wording import MIN_PHRASE_CHARS, parenthesis_free
from expound.rankers.claims import Problem
from expound.rankers.reading import Mention, Spans, feature_terms, pattern


def value_owners(facts: DecisionFacts) -> dict[str, str]:
    """Each of the decision's actual values as the gate matches it (lowered) -> its feature;
    a value that names its own feature ("no checking account") binds to it wherever it
    stands, and is left out."""
    terms: dict[str, list[str]] = {}
    for term, feature in feature_terms(facts).items():
        terms.setdefault(feature, []).append(term)
    owners: dict[str, str] = {}
    for factor in facts.factors.values():
        own = pattern(terms[factor.feature]) if factor.feature in terms else None
        for form in (factor.value_text, parenthesis_free(factor.value_text)):
            key = form.lower().rstrip(")")
            if len(form) < MIN_PHRASE_CHARS or (own is not None and own.search(key)):
                continue
            owners.setdefault(key, factor.feature)
    return owners


def self_named_values(facts: DecisionFacts) -> dict[str, list[str]]:
    """The decision's actual values that name their own feature ("no checking account"),
    as the gate matches them (lowered), by feature: the name inside such a value is a
    mention of the feature (its direction and place are read), not a word of a value."""
    terms: dict[str, list[str]] = {}
    for term, feature in feature_terms(facts).items():
        terms.setdefault(feature, []).append(term)
    named: dict[str, list[str]] = {}
    for factor in facts.factors.values():
        if factor.feature not in terms:
            continue
        own = pattern(terms[factor.feature])
        for form in (factor.value_text, parenthesis_free(factor.value_text)):
            key = form.lower().rstrip(")")
            if len(form) >= MIN_PHRASE_CHARS and own.search(key):
                named.setdefault(factor.feature, []).append(key)
    return named


def reason_groups(facts: DecisionFacts) -> dict[str, set[str]]:
    """Each feature -> the features of its reason code (itself among them)."""
    return {
        name: set(entry.features) for entry in facts.manifest.reasons for name in entry.features
    }


def closest(mentions: list[Mention], start: int, end: int) -> Mention | None:
    """The mention nearest the value at [start, end): the last before it or the first
    after it, whichever leaves fewer characters between; the one before on a tie."""
    before = next((m for m in reversed(mentions) if m.end <= start), None)
    after = next((m for m in mentions if m.start >= end), None)
    if before is None or (after is not None and after.start - end < start - before.end):
        return after
    return before


def misbound_values(
    text: str,
    clause: tuple[int, int],
    mentions: list[Mention],
    values: list[tuple[int, int]],
    owners: dict[str, str],
    names: Spans,
    in_reason: dict[int, set[str]],
) -> list[Problem]:
    """The actual values quoted in ``clause`` (of ``text``, lowered) next to a factor they
    are not the value of.

    Args:
        text: the whole candidate, lowered.
        clause: the clause's span.
        mentions: the factors the clause names, in order.
        values: every quoted actual value of the text, sorted by start.
        owners: :func:`value_owners` of the decision.
        names: the spans of feature names, reason texts and the plan's quoted values: a
            value's words inside one ("other" in "other instalment plans", "100 DM" in a
            typical "less than 100 DM") state no value.
        in_reason: the mentions (by id) inside a reason's text, each with the features of
            its reason: "Length or type of employment (less than a year)" names the group,
            and the value may be any of its features'.
    """
    start, end = clause
    first = bisect.bisect_left(values, (start, start))
    problems = []
    for value_start, value_end in values[first:]:
        if value_start >= end:
            break
        if names.hold(value_start, value_end):
            continue
        bound = closest(mentions, value_start, value_end)
        stated = owners.get(text[value_start:value_end])
        if bound is None or stated is None:
            continue
        if stated in in_reason.get(id(bound), {bound.feature}):
            continue
        problems.append(
            Problem(
                "value",
                value_start,
                value_end,
                f"{text[value_start:value_end]!r} is the value of {stated}, stated as the value "
                f"of {bound.feature}",
            )
        )
    return problems
