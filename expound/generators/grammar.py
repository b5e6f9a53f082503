"""Constrained drafting: a grammar compiled per decision from its facts and a phrase bank.

Every string the grammar admits states only true facts (the decision, the reasons in
their importance order, their values and directions), so a small model can only choose
wording and emphasis. The grammar is kept as data (``Grammar``) so tests can sample from
it directly, and rendered to the EBNF that vLLM's structured outputs take.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts, Factor, parenthesis_free

MAX_FACTORS = 4


@dataclass(frozen=True)
class Ref:
    """A reference to another rule."""

    name: str


Item = str | Ref
Sequence_ = tuple[Item, ...]


@dataclass
class Grammar:
    """Rules as alternatives of sequences; optional parts are alternatives with ``()``."""

    rules: dict[str, list[Sequence_]] = field(default_factory=dict)

    def add(self, name: str, alternatives: list[Sequence_]) -> Ref:
        """Adds a rule and returns a reference to it."""
        if not alternatives:
            raise ValueError(f"rule {name} has no alternatives")
        self.rules[name] = alternatives
        return Ref(name)

    def to_ebnf(self) -> str:
        """The grammar in the EBNF dialect of vLLM's structured outputs (GBNF)."""

        def item(part: Item) -> str:
            if isinstance(part, Ref):
                return part.name
            return json.dumps(part, ensure_ascii=False)

        lines = []
        for name, alternatives in self.rules.items():
            rendered = " | ".join(
                " ".join(item(p) for p in seq) if seq else '""' for seq in alternatives
            )
            lines.append(f"{name} ::= {rendered}")
        return "\n".join(lines) + "\n"

    def sample(self, rng: random.Random, name: str = "root") -> str:
        """One random string of the language (for tests and offline evaluation)."""
        sequence = rng.choice(self.rules[name])
        return "".join(p if isinstance(p, str) else self.sample(rng, p.name) for p in sequence)


@cache
def phrase_bank(audience: Audience) -> dict[str, Any]:
    """The versioned phrase bank of an audience (generators/phrasebanks/*.json)."""
    name = f"{audience.value.lower()}.v1.json"
    text = resources.files("expound.generators").joinpath("phrasebanks", name).read_text()
    bank: dict[str, Any] = json.loads(text)
    bank["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return bank


def _fill(template: str, **values: str) -> str:
    return template.format(**values)


def _factor_phrases(bank: dict[str, Any], factor: Factor) -> list[Sequence_]:
    return [
        (
            _fill(
                template,
                description=factor.description,
                value=parenthesis_free(factor.value_text),
                name=factor.feature,
            ),
        )
        for template in bank["factor"]
    ]


def _lead_factors(facts: DecisionFacts) -> list[Factor]:
    """The analyst's plan (both directions, by |contribution|); otherwise one factor per
    principal reason (its strongest feature), or the helping factors."""
    if facts.plan is not None and facts.audience is Audience.ANALYST:
        return [facts.factors[p.feature] for p in facts.plan.factors][:MAX_FACTORS]
    if facts.prediction.adverse:
        return [facts.factors[reason.features[0]] for reason in facts.reasons][:MAX_FACTORS]
    return facts.ordered[:MAX_FACTORS]


def _numbers(facts: DecisionFacts) -> dict[str, str]:
    prediction, attributions = facts.prediction, facts.attributions
    return {
        "score": f"{prediction.score:.3f}",
        "threshold": f"{prediction.threshold:.2f}",
        "base": f"{attributions.base_value:+.3f}",
        "output": f"{attributions.model_output:+.3f}",
        "units": attributions.units,
    }


def build_grammar(facts: DecisionFacts) -> Grammar:
    """Compiles the grammar of true explanations of one decision for its audience."""
    bank = phrase_bank(facts.audience)
    grammar = Grammar()
    numbers = _numbers(facts)
    adverse = facts.prediction.adverse
    opening = grammar.add(
        "opening",
        [(_fill(t, **numbers),) for t in bank["declined_open" if adverse else "approved_open"]],
    )
    body: list[Item] = [opening]
    if bank.get("base"):
        body += [" ", grammar.add("base", [(_fill(t, **numbers),) for t in bank["base"]])]
    first_key, next_key = (
        ("first_adverse", "next_adverse") if adverse else ("first_favourable", "next_favourable")
    )
    rationale = (
        grammar.add("rationale", [*[(" " + r,) for r in bank["rationale"]], ()])
        if bank["rationale"]
        else None
    )
    if facts.audience is Audience.COMPLIANCE:
        statements = _compliance_statements(grammar, bank, facts, first_key, next_key)
        statements += _plan_remainder(grammar, facts)
    else:
        statements = _factor_statements(grammar, bank, facts, first_key, next_key, rationale)
    body += statements
    if bank["advice"] and adverse:
        actionable = [
            facts.manifest.feature(name).description
            for reason in facts.reasons
            for name in reason.features
            if facts.manifest.feature(name).actionable
        ][:2]
        if actionable:
            advice = [(" " + _fill(t, actionable=a),) for t in bank["advice"] for a in actionable]
            body.append(grammar.add("advice", [*advice, ()]))
    closings = bank["close"] if adverse else bank.get("approved_close", bank["close"])
    body.append(grammar.add("closing", [*[(" " + c,) for c in closings if c], ()]))
    grammar.rules = {"root": [tuple(body)], **grammar.rules}
    return grammar


def _factor_statements(
    grammar: Grammar,
    bank: dict[str, Any],
    facts: DecisionFacts,
    first_key: str,
    next_key: str,
    rationale: Ref | None,
) -> list[Item]:
    statements: list[Item] = []
    for position, factor in enumerate(_lead_factors(facts), start=1):
        phrase = grammar.add(f"factor{position}", _factor_phrases(bank, factor))
        magnitude = f"{abs(factor.contribution):.3f}"
        if facts.audience is Audience.ANALYST:
            # The analyst's plan runs in both directions: each factor's own templates.
            side = "adverse" if factor.raises_risk else "favourable"
            first_key, next_key = f"first_{side}", f"next_{side}"
        templates = bank[first_key] if position == 1 else bank[next_key]
        alternatives: list[Sequence_] = []
        for template in templates:
            before, _, after = template.partition("{factor}")
            alternatives.append(
                (
                    " " + before.replace("{magnitude}", magnitude),
                    phrase,
                    after.replace("{magnitude}", magnitude),
                )
            )
        statements.append(grammar.add(f"statement{position}", alternatives))
        # Every reason is stated, in order of importance (coverage is the point of the
        # explanation); one optional rationale after the main one keeps texts short
        # enough to finish within the token budget.
        if position == 1 and rationale is not None:
            statements.append(rationale)
    return statements


def _compliance_statements(
    grammar: Grammar, bank: dict[str, Any], facts: DecisionFacts, first_key: str, next_key: str
) -> list[Item]:
    if not facts.prediction.adverse:
        # No adverse action, no reason codes: the factors that favoured approval instead.
        return _factor_statements(grammar, bank, facts, first_key, next_key, None)
    statements: list[Item] = []
    for reason in facts.reasons:
        templates = bank[first_key] if reason.rank == 1 else bank[next_key]
        filled: list[Sequence_] = [
            (" " + _fill(t, code=reason.code, reason=reason.text[0].lower() + reason.text[1:]),)
            for t in templates
        ]
        statements.append(grammar.add(f"statement{reason.rank}", filled))
    return statements


def _plan_remainder(grammar: Grammar, facts: DecisionFacts) -> list[Item]:
    """The plan's factors the compliance statements leave out (those pushing the other
    way, above all), stated once with their directions: the gate requires the whole plan."""
    if facts.plan is None:
        return []
    stated = (
        {name for reason in facts.reasons for name in reason.features}
        if facts.prediction.adverse
        else {f.feature for f in _lead_factors(facts)}
    )
    rest = [facts.factors[p.feature] for p in facts.plan.factors if p.feature not in stated]
    if not rest:
        return []
    listed = "; ".join(
        f"the {f.description} ({parenthesis_free(f.value_text)}) "
        f"{'raised' if f.raises_risk else 'lowered'} the risk"
        for f in rest
    )
    return [grammar.add("plan_rest", [(f" Factors by size of contribution: {listed}.",)])]
