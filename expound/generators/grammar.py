"""Constrained drafting: grammars compiled per decision from its facts and a phrase bank.

Every string a grammar admits states only true facts (the decision, the plan's factors in
their order of importance, their values, directions and context, a verified
counterfactual), so a small model can only choose wording and emphasis. One decision gets
several grammars, one per plan style (:func:`candidate_grammars`): the candidates then
differ in what they say first, and the question decides which the ranker prefers. The
sentences of one text never share an opener. The grammar is kept as data (``Grammar``) so
tests can sample from it directly, and rendered to the EBNF that vLLM's structured
outputs take.
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
from expound.explainers.facts import DecisionFacts
from expound.generators.openers import assign_openers, opener
from expound.generators.styles import Slot, compose
from expound.rankers.routing import preferred_styles

PHRASE_BANK_VERSION = "v2"


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


@dataclass(frozen=True)
class PlannedGrammar:
    """The grammar of one plan style (see :data:`expound.rankers.routing.STYLES`)."""

    style: str
    grammar: Grammar


@cache
def phrase_bank(audience: Audience) -> dict[str, Any]:
    """The versioned phrase bank of an audience (generators/phrasebanks/*.json)."""
    name = f"{audience.value.lower()}.{PHRASE_BANK_VERSION}.json"
    text = resources.files("expound.generators").joinpath("phrasebanks", name).read_text()
    bank: dict[str, Any] = json.loads(text)
    bank["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return bank


def _to_grammar(slots: list[Slot], rotation: int) -> Grammar:
    """One rule per sentence slot; each slot keeps only the phrasings whose openers it was
    given, so no text the grammar admits opens two sentences alike.

    ``rotation`` shifts which slot gets which opener first, so grammars of one style
    drafted side by side still differ in phrasing.
    """
    choices = [_rotated(slot.sentences, rotation + index) for index, slot in enumerate(slots)]
    given = assign_openers(choices, optional=[slot.optional for slot in slots])
    grammar = Grammar()
    body: list[Item] = []
    for slot, openers, sentences in zip(slots, given, choices, strict=True):
        kept = [s for s in sentences if opener(s) in openers]
        if not kept:
            continue  # an optional slot whose openers the others took
        lead = " " if body else ""
        alternatives: list[Sequence_] = [(lead + s,) for s in kept]
        if slot.optional:
            alternatives.append(())
        body.append(grammar.add(slot.name, alternatives))
    grammar.rules = {"root": [tuple(body)], **grammar.rules}
    return grammar


def _rotated(sentences: list[str], by: int) -> list[str]:
    if not sentences:
        return sentences
    by %= len(sentences)
    return sentences[by:] + sentences[:by]


def candidate_grammars(facts: DecisionFacts, n: int) -> list[PlannedGrammar]:
    """``n`` grammars of true explanations of one decision, each of a different plan style.

    The styles come in the order the question and the audience prefer them
    (:func:`expound.rankers.routing.preferred_styles`); styles the decision cannot take
    are skipped (recourse first needs a verified counterfactual, question first a question
    naming a factor). When ``n`` exceeds the styles available, they repeat with their
    phrasings shifted, so no two grammars are the same.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    bank = phrase_bank(facts.audience)
    styles = preferred_styles(facts)
    planned = []
    for index in range(n):
        style = styles[index % len(styles)]
        # One way of naming the factors per text; the candidates take the bank's ways in
        # turn.
        slots = compose(facts, bank, style, phrasing=index)
        planned.append(PlannedGrammar(style, _to_grammar(slots, index // len(styles))))
    return planned


def build_grammar(facts: DecisionFacts) -> Grammar:
    """The grammar of the style the question and the audience prefer."""
    return candidate_grammars(facts, 1)[0].grammar
