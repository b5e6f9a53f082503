"""Faithful texts for the mutation suite of ``make eval``, and their mutants.

The templates live in ``bench/eval_texts.json`` (written for the eval only, apart from the
verifier's test texts and the drafting phrase banks). For each decision one faithful text
is filled from its facts: the decision, then its factors in their order of importance
(applicants: up to three principal reasons' lead features for a denial, helping factors
for an approval; analysts and compliance: the content plan's factors of both directions
as well), each with its value and a phrase of its true direction. Each mutant changes
exactly one claim:

- ``direction``: the first factor's direction phrase swapped for its opposite;
- ``value``: the first factor with a stated value given another value (a number doubled,
  another category's description, another band's label, the other boolean);
- ``unused_feature``: a sentence about a feature no demo model uses;
- ``order``: the first two factors swapped, so the second is called the most important;
- ``decision``: the opening of the opposite decision;
- ``swap``: the first two factors whose values are worded differently trade values, each
  stated with the other's actual value (the order and directions unchanged);
- ``voice`` (analyst and compliance only): the first factor's true effect said to the
  reader as if they were the applicant ("counted against you");
- ``joined``: the first two factors' sentences joined into one clause (", and then came
  ..."), the second one's direction swapped for its opposite: each direction in a clause
  must be read for its own factor, not the clause's first for both;
- ``share``: a sentence giving the first factor a share of the decision that is another
  fact of the record (the score as a percentage, else the threshold): a percentage is read
  as the factor's share of the push, not as any number the decision holds;
- ``placed``: the first two factors' sentences, in their true order, marked "Secondly,"
  and "Firstly,": the places the adverbs state, not the order of writing, claim the
  importance (first two factors of different rank only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts, Factor, value_text
from expound.rankers import claims

TEXTS = Path(__file__).resolve().parent / "eval_texts.json"
MUTATIONS = (
    "direction",
    "value",
    "unused_feature",
    "order",
    "decision",
    "swap",
    "voice",
    "joined",
    "share",
    "placed",
)
MAX_FACTORS = 3


@cache
def templates() -> dict[str, Any]:
    """The eval's own templates (bench/eval_texts.json)."""
    loaded: dict[str, Any] = json.loads(TEXTS.read_text())
    return loaded


@dataclass(frozen=True)
class _Slot:
    factor: Factor
    value: str
    effect_index: int


def lead_factors(facts: DecisionFacts) -> list[Factor]:
    """The factors an explanation states, most important first: for analysts the plan
    (both directions, by |contribution|); for compliance the reasons' (or helping) factors
    and the rest of the plan, in the decision's order of importance; otherwise up to three
    reasons' lead features or helping factors."""
    if facts.prediction.adverse:
        leads = [facts.factors[r.features[0]] for r in facts.reasons][:MAX_FACTORS]
    else:
        leads = facts.ordered[:MAX_FACTORS]
    if facts.plan is None or facts.audience is Audience.APPLICANT:
        return leads
    planned = [facts.factors[p.feature] for p in facts.plan.factors]
    if facts.audience is Audience.ANALYST:
        return planned
    chosen = {f.feature: f for f in [*leads, *planned]}
    return sorted(chosen.values(), key=lambda f: (f.importance or len(facts.factors), f.rank))


def _wrong_value(facts: DecisionFacts, factor: Factor) -> str | None:
    spec = facts.manifest.feature(factor.feature)
    if spec.type == "category":
        actual = next(i.value for i in facts.attributions.items if i.feature == factor.feature)
        others = [c for c in spec.categories or [] if c != actual]
        return value_text(spec, others[0]) if others else None
    if spec.type == "bool":
        return "no" if factor.value_text == "yes" else "yes"
    if factor.number is None:
        return None
    if spec.value_label(factor.number) is not None:
        return next((lbl for lbl in spec.value_labels.values() if lbl != factor.value_text), None)
    return value_text(spec, factor.number * 2 + 1)


def _wrong_share(facts: DecisionFacts, factor: Factor) -> int | None:
    """A percentage the record holds that is not ``factor``'s share of the push: the score,
    else the threshold (None when both round to its share)."""
    share = round(claims.share_of(facts, factor.feature) * 100)
    for number in (facts.prediction.score * 100, facts.prediction.threshold * 100):
        if abs(round(number) - share) > 1:
            return round(number)
    return None


def _sentences(
    facts: DecisionFacts,
    slots: list[_Slot],
    variant: int,
    flip_at: int | None = None,
    spoken: bool = False,
) -> list[str]:
    """The factors' sentences; ``flip_at`` turns the direction of the one at that position,
    ``spoken`` says the first one's effect to the reader in the second person."""
    bank = templates()["audiences"][facts.audience.value]
    out = []
    for position, slot in enumerate(slots):
        factor = slot.factor
        raises = factor.raises_risk != (position == flip_at)
        side = "adverse" if raises else "favourable"
        effects = bank["effect"][side]
        if spoken and position == 0:
            effects = [templates()["mutations"]["voice_effect"][side]]
        phrase = bank["factor"].format(
            description=factor.description,
            value=slot.value.replace(" (", ", ").replace(")", ""),
        )
        template = bank["first" if position == 0 else "next"][variant % len(bank["first"])]
        out.append(
            template.format(
                factor=phrase,
                effect=effects[slot.effect_index % len(effects)],
                magnitude=f"{abs(factor.contribution):.3f}",
            )
        )
    return out


def _opening(facts: DecisionFacts, variant: int, adverse: bool) -> str:
    bank = templates()["audiences"][facts.audience.value]["open"]
    choices = bank["decline" if adverse else "approve"]
    return str(choices[variant % len(choices)]).format(
        score=f"{facts.prediction.score:.3f}", threshold=f"{facts.prediction.threshold:.2f}"
    )


def _text(opening: str, sentences: list[str]) -> str:
    return " ".join([opening, *sentences])


def faithful_and_mutants(facts: DecisionFacts, variant: int) -> tuple[str, dict[str, str]]:
    """The faithful text of a decision and its mutants by type (types that do not apply
    to the decision, e.g. ``order`` with a single factor, are left out)."""
    factors = lead_factors(facts)
    slots = [_Slot(f, f.value_text, variant + i) for i, f in enumerate(factors)]
    adverse = facts.prediction.adverse
    opening = _opening(facts, variant, adverse)
    faithful = _text(opening, _sentences(facts, slots, variant))
    mutants: dict[str, str] = {}
    if slots:
        mutants["direction"] = _text(opening, _sentences(facts, slots, variant, flip_at=0))
    for index, slot in enumerate(slots):
        wrong = _wrong_value(facts, slot.factor)
        if wrong is not None:
            changed = [*slots[:index], _Slot(slot.factor, wrong, slot.effect_index)]
            changed += slots[index + 1 :]
            mutants["value"] = _text(opening, _sentences(facts, changed, variant))
            break
    suite = templates()["mutations"]
    unused = suite["unused_features"][variant % len(suite["unused_features"])]
    effects = templates()["audiences"][facts.audience.value]["effect"]
    extra = suite["unused_sentence"].format(
        feature=unused, effect=effects["adverse" if adverse else "favourable"][0]
    )
    sentences = _sentences(facts, slots, variant)
    mutants["unused_feature"] = _text(opening, [*sentences[:1], extra, *sentences[1:]])
    if len(slots) >= 2:
        swapped = [slots[1], slots[0], *slots[2:]]
        mutants["order"] = _text(opening, _sentences(facts, swapped, variant))
        flipped = _sentences(facts, slots, variant, flip_at=1)
        second = flipped[1]
        joined = f"{flipped[0].removesuffix('.')}, and {second[0].lower()}{second[1:]}"
        mutants["joined"] = _text(opening, [joined, *flipped[2:]])
        first, then = (slot.factor.importance for slot in slots[:2])
        if first is not None and then is not None and first != then:
            placed = [
                f"{adverb}, {sentence[0].lower()}{sentence[1:]}"
                for adverb, sentence in zip(("Secondly", "Firstly"), sentences, strict=False)
            ]
            mutants["placed"] = _text(opening, [*placed, *sentences[2:]])
    mutants["decision"] = _text(_opening(facts, variant, not adverse), sentences)
    pairs = [(a, b) for a in range(len(slots)) for b in range(a + 1, len(slots))]
    traded = next(((a, b) for a, b in pairs if slots[a].value != slots[b].value), None)
    if traded is not None:
        a, b = traded
        swapped_values = list(slots)
        swapped_values[a] = _Slot(slots[a].factor, slots[b].value, slots[a].effect_index)
        swapped_values[b] = _Slot(slots[b].factor, slots[a].value, slots[b].effect_index)
        mutants["swap"] = _text(opening, _sentences(facts, swapped_values, variant))
    if slots:
        wrong_share = _wrong_share(facts, slots[0].factor)
        if wrong_share is not None:
            extra = suite["share_sentence"].format(
                description=slots[0].factor.description, share=wrong_share
            )
            mutants["share"] = _text(opening, [*sentences[:1], extra, *sentences[1:]])
    if slots and facts.audience is not Audience.APPLICANT:
        spoken = _sentences(facts, slots, variant, spoken=True)
        mutants["voice"] = _text(opening, spoken)
    return faithful, mutants
