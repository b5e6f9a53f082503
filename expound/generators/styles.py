"""Plan styles: the sentences of one explanation, in the order a style puts them.

A style is an arrangement of the same content plan (the facts never change, only what
comes first and how much is said in one sentence):

- ``contrastive``: the factors of the decision's direction, most important first, then the
  ones that pushed the other way, each introduced as such ("Pulling the other way, ...");
  analysts read the plan in its own |contribution| order, turning where the direction does;
- ``recourse_first``: the verified counterfactual right after the decision, then the
  contrastive body (adverse decisions with a recorded, re-scored flip only);
- ``compact``: the factors as one list sentence, most important first;
- ``question_first``: the factor the question names first, then the rest with no claim of
  order (the text no longer follows importance, so it says nothing about it).

Each sentence slot lists every phrasing it may take; :mod:`expound.generators.grammar`
turns the slots into a grammar and shares the openers out among them. Trailing minor
factors of one direction are said in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.explainers.plan import PlannedFactor
from expound.generators.deterministic import (
    base_rate_sentences,
    context_inline,
    counterfactual_sentence,
    no_recourse,
    percentile_sentence,
    typical_sentence,
)
from expound.models.wording import parenthesis_free
from expound.rankers.reading import lexicon, pattern
from expound.rankers.routing import asked_factors

# A factor under this share of the total push is minor: two or more of them at the end of
# a text, pushing the same way, share one sentence.
MINOR_SHARE = 0.10
# Words per text each audience reads comfortably (issue 10, item 4); compliance has none.
LENGTH = {Audience.APPLICANT: (60, 120), Audience.ANALYST: (100, 200)}
# Optional sentences left out first when a text could run long, or made required when it
# could run short: courtesy, then colour, then advice.
OPTIONAL_ORDER = ("closing", "aside", "advice", "recourse")
ORDINALS = ("first", "second", "third", "fourth", "fifth")


@dataclass(frozen=True)
class Slot:
    """One sentence of a text: every phrasing it may take, and whether it may be left out."""

    name: str
    sentences: list[str]
    optional: bool = False


@dataclass(frozen=True)
class _Item:
    """One factor as a style places it."""

    planned: PlannedFactor
    phrases: tuple[str, ...]
    # The same phrases carrying the magnitude, for a sentence of minor factors:
    # "the amount of credit requested (9,629 DM, 0.110)", not "(9,629 DM) (0.110)".
    minor_phrases: tuple[str, ...]
    adverse: bool
    magnitude: str
    lead: bool  # the most important factor of the decision: it may be called the main one

    @property
    def minor(self) -> bool:
        return self.planned.share < MINOR_SHARE


def _lower_first(text: str) -> str:
    """A reason's wording inside a sentence: "CHK01: status or balance of ..."."""
    return f"{text[0].lower()}{text[1:]}"


def _direction(adverse: bool) -> str:
    return "adverse" if adverse else "favourable"


def _items(facts: DecisionFacts, bank: dict[str, Any], phrasing: int | None) -> list[_Item]:
    """The plan's factors as items; for an adverse compliance text, those its principal
    reasons do not already state. ``phrasing`` picks one of the bank's factor phrasings
    for every factor of the text (None: each factor may take any)."""
    plan = facts.plan
    if plan is None:
        raise ValueError("a grammar follows a content plan; the facts have none")
    stated: set[str] = set()
    if facts.audience is Audience.COMPLIANCE and facts.prediction.adverse:
        stated = {name for reason in facts.reasons for name in reason.features}
    items = []
    for planned in plan.factors:
        if planned.feature in stated:
            continue
        factor = facts.factors[planned.feature]
        value = parenthesis_free(factor.value_text)
        magnitude = f"{abs(factor.contribution):.3f}"
        templates = list(bank["factor"])
        if phrasing is not None:
            templates = [templates[phrasing % len(templates)]]
        phrases = tuple(
            template.format(description=factor.description, value=value, name=factor.feature)
            for template in templates
        )
        items.append(
            _Item(
                planned=planned,
                phrases=phrases,
                minor_phrases=tuple(
                    _minor_phrase(bank, t, factor.description, value, factor.feature, magnitude)
                    for t in templates
                ),
                adverse=factor.raises_risk,
                magnitude=magnitude,
                lead=factor.importance == 1 and not stated,
            )
        )
    return items


def _minor_phrase(
    bank: dict[str, Any], template: str, description: str, value: str, name: str, magnitude: str
) -> str:
    """A factor phrase as a sentence of minor factors names it. Where the bank states their
    magnitudes (``minor_factor``), the magnitude goes inside the value's own parenthesis
    where the phrase has one, "(9,629 DM, 0.110)", else as the bank's form says."""
    if "minor_factor" in bank and "({value})" in template:
        value = f"{value}, {magnitude}"
    phrase = template.format(description=description, value=value, name=name)
    if "minor_factor" in bank and "({value})" not in template:
        return str(bank["minor_factor"]).format(factor=phrase, magnitude=magnitude)
    return phrase


def _with_context(sentence: str, context: str) -> str:
    """``sentence`` with trailing context phrases before its full stop."""
    return sentence[:-1] + context + "." if context and sentence.endswith(".") else sentence


def _sentences(templates: list[str], item: _Item, context: str = "") -> list[str]:
    out = []
    for template in templates:
        for phrase in item.phrases:
            filled = template.format(factor=phrase, magnitude=item.magnitude)
            out.append(filled)
            if context:
                out.append(_with_context(filled, context))
    return out


def _required_max_words(slots: list[Slot]) -> int:
    return sum(max(len(s.split()) for s in slot.sentences) for slot in slots if not slot.optional)


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class _Writer:
    """The slots of one decision's text in one style."""

    def __init__(
        self, facts: DecisionFacts, bank: dict[str, Any], style: str, phrasing: int | None
    ) -> None:
        self.facts = facts
        self.bank = bank
        self.style = style
        self.adverse = facts.prediction.adverse
        self.analyst = facts.audience is Audience.ANALYST
        self.applicant = facts.audience is Audience.APPLICANT
        self.items = _items(facts, bank, phrasing)
        # Question first breaks the order of importance: such a text claims none.
        self.ordered = style != "question_first"
        # Set when the text would run past the audience's length: see :meth:`_groups`.
        self.merge = False
        self.slots: list[Slot] = []

    def add(self, name: str, sentences: list[str], optional: bool = False) -> None:
        if not self.ordered:
            cues = pattern(lexicon()["sequence_cues"])
            sentences = [s for s in sentences if not cues.search(s.lower())]
        unique = list(dict.fromkeys(sentences))
        if unique:
            self.slots.append(Slot(name, unique, optional))
        elif not optional:
            raise ValueError(f"slot {name} of style {self.style} has no phrasing")

    # -- the parts -------------------------------------------------------------------

    def opening(self) -> None:
        prediction, attributions = self.facts.prediction, self.facts.attributions
        numbers = {
            "score": f"{prediction.score:.3f}",
            "threshold": f"{prediction.threshold:.2f}",
            "base": f"{attributions.base_value:+.3f}",
            "output": f"{attributions.model_output:+.3f}",
            "units": attributions.units,
        }
        self.add("opening", [t.format(**numbers) for t in self.bank["open"][self._side]])
        if self.bank.get("base"):
            self.add("base", [t.format(**numbers) for t in self.bank["base"]])

    @property
    def _side(self) -> str:
        return _direction(self.adverse)

    def _context(self, item: _Item) -> str:
        """Context said within a factor's own sentence: analysts get share, percentile
        and typical value; applicants the share of the effect in words."""
        if self.analyst:
            return context_inline(self.facts, item.planned)
        if self.applicant and item.planned.share_words is not None:
            # "..., accounting for about a third of the total effect": a bare ", about a
            # third of the total effect" after a clause reads as a figure pasted on.
            return f", accounting for {item.planned.share_words} of the total effect"
        return ""

    def _aside(self, item: _Item) -> None:
        """Applicants: one optional sentence after the leading factor, either its value in
        context (percentile, typical value among favourable decisions) or why lenders
        weigh it; one, not all, so the text stays short."""
        if not self.applicant:
            return
        placed = [
            sentence
            for sentence in (
                percentile_sentence(self.facts, item.planned),
                typical_sentence(self.facts, item.planned),
            )
            if sentence is not None
        ]
        self.add("aside", [*placed, *self.bank["rationale"]], optional=True)

    def reasons(self) -> None:
        """Compliance, adverse: the principal reasons with their codes, in order."""
        facts, bank = self.facts, self.bank["reason"]
        named = [
            (reason.rank, f"{reason.code}: {_lower_first(facts.reason_text(reason))}")
            for reason in facts.reasons
        ]
        if len(named) == 1:
            # One reason is no list and has no rank: "the principal reason", not "the first".
            (_, text), templates = named[0], bank["only"]
            self.add("reason1", [t.format(reason=text) for t in templates])
            return
        if self.style == "compact" or not self.ordered:
            items = "; ".join(text for _, text in named)
            self.add("reasons", [t.format(items=items) for t in self.bank["reason_list"]])
            return
        for rank, text in named:
            templates = bank["lead"] if rank == 1 else bank["next"]
            ordinal = ORDINALS[rank - 1] if rank <= len(ORDINALS) else f"rank {rank}"
            self.add(f"reason{rank}", [t.format(reason=text, ordinal=ordinal) for t in templates])

    def body(self, items: list[_Item], previous: bool | None = None, said: int = 0) -> None:
        """The items, one sentence each, with connectors that follow the directions;
        several factors of one direction share a sentence where :meth:`_groups` says.
        ``said``: factors already stated (their context given) before these."""
        first = previous is None
        for index, group in enumerate(self._groups(items, previous)):
            position = index + said
            if len(group) > 1:
                self._together(group)
                previous = group[0].adverse
                continue
            (item,) = group
            side = _direction(item.adverse)
            if previous is None and item.lead:
                templates = self.bank["lead"][side]
            elif previous is not None and previous != item.adverse:
                templates = self.bank["turn"][side]
            elif previous is not None and self.ordered:
                templates = self.bank["next"][side] + self.bank["also"][side]
            else:
                templates = self.bank["also"][side]
            # Context for the first two factors (analysts) or the leading one (applicants).
            # (one only in a text that would run long).
            shown = 2 if self.analyst and not self.merge else 1
            context = self._context(item) if position < shown else ""
            self.add(f"factor_{item.planned.feature}", _sentences(templates, item, context))
            if first and position == 0:
                self._aside(item)
            previous = item.adverse

    def _groups(self, items: list[_Item], previous: bool | None) -> list[list[_Item]]:
        """The sentences of the items: one each, but together (two or more, one
        direction) the minor factors at the end that push the way the factor before them
        did, and, in a text that would run long, every factor after the first that pushes
        the way the first did."""
        groups = [[item] for item in items]
        if self.merge and items:
            # After a sentence of the same direction (``previous``) the run may start at
            # once; otherwise after the first item, which opens or turns the direction.
            same = previous is not None and items[0].adverse == previous
            way, start = (previous, 0) if same else (items[0].adverse, 1)
            end = start
            while end < len(items) and items[end].adverse == way:
                end += 1
            if end - start >= 2:
                return [
                    *[[i] for i in items[:start]],
                    items[start:end],
                    *[[i] for i in items[end:]],
                ]
        tail: list[_Item] = []
        for item in reversed(items):
            if not item.minor or (tail and item.adverse != tail[0].adverse):
                break
            tail.insert(0, item)
        before = items[-len(tail) - 1].adverse if len(tail) < len(items) else previous
        if len(tail) >= 2 and before == tail[0].adverse:
            groups = [*groups[: len(items) - len(tail)], tail]
        return groups

    def _together(self, items: list[_Item]) -> None:
        """Several factors of one direction in one sentence: "to a lesser extent" where
        the text runs in order of importance, a plain "in addition" where it does not."""
        side = _direction(items[0].adverse)
        phrases = [i.minor_phrases for i in items]
        # One phrasing per factor kind across the list: "A and B", both the same way.
        names = [_joined([p[k] for p in phrases]) for k in range(len(items[0].phrases))]
        key = "minor" if self.ordered or "together" not in self.bank else "together"
        self.add(
            "together", [t.format(factors=name) for t in self.bank[key][side] for name in names]
        )

    def listing(self, items: list[_Item]) -> None:
        """Compact: the factors as one list. Analysts and compliance list the plan in its
        own order, each factor with its direction; applicants the factors of the
        decision's direction, most important first, with the rest after."""
        forms = self.bank["list_item"]
        after_reasons = (
            self.facts.audience is Audience.COMPLIANCE and self.adverse and bool(self.facts.reasons)
        )
        if "both" in self.bank["list"]:
            if len(items) == 1:
                # "In order of contribution:" opens a list; one factor is a sentence.
                self.body(items, previous=True if after_reasons else None)
            else:
                self._list("both", items, forms)
            return
        primary = [i for i in items if i.adverse == self.adverse]
        if len(primary) < 2:
            # "The reasons, most important first:" opens a list; one factor is a sentence.
            self.body(primary + [i for i in items if i.adverse != self.adverse])
            return
        self._list(self._side, primary, forms)
        self.body([i for i in items if i.adverse != self.adverse], self.adverse)

    def _list(self, key: str, items: list[_Item], forms: dict[str, list[str]]) -> None:
        if not items:
            return
        # The largest factor with its context (analysts): a list says little else.
        context = self._context(items[0]) if self.analyst else ""
        # Each direction's forms in turn, so the verbs of one list vary.
        chosen, said = [], {True: 0, False: 0}
        for item in items:
            turn = forms[_direction(item.adverse)]
            chosen.append(turn[said[item.adverse] % len(turn)])
            said[item.adverse] += 1
        listed = [
            "; ".join(
                form.format(factor=i.phrases[k], magnitude=i.magnitude)
                + (context if i is items[0] else "")
                for i, form in zip(items, chosen, strict=True)
            )
            for k in range(len(items[0].phrases))
        ]
        self.add("list", [t.format(items=x) for t in self.bank["list"][key] for x in listed])

    def recourse(self) -> bool:
        """The verified counterfactual, or honestly none; False when there is nothing to
        say (no search, or one that was not exhaustive)."""
        plan = self.facts.plan
        recourse = plan.recourse if plan is not None else None
        if recourse is None or not recourse.searched_features or not self.adverse:
            return False
        verified = [c for c in recourse.counterfactuals if c.flips]
        if verified:
            sentence = counterfactual_sentence(self.facts, verified[0])
            lower = sentence[0].lower() + sentence[1:]
            self.add(
                "recourse",
                [
                    t.format(counterfactual=sentence, counterfactual_lower=lower)
                    for t in self.bank["recourse"]
                ],
            )
            return True
        if recourse.exhaustive and not recourse.counterfactuals:
            self.add("recourse", [no_recourse(self.facts.audience)], optional=not self.applicant)
            return True
        return False

    def advice(self) -> None:
        facts = self.facts
        if not (self.bank["advice"] and self.adverse):
            return
        actionable = [
            facts.manifest.feature(name).description
            for reason in facts.reasons
            for name in reason.features
            if facts.manifest.feature(name).actionable
        ][:2]
        sentences = [t.format(actionable=a) for t in self.bank["advice"] for a in actionable]
        if sentences:
            self.add("advice", sentences, optional=True)

    def closing(self) -> None:
        plan = self.facts.plan
        close = self.bank["close"]
        key = self._side if self._side in close else (plan.attribution_method if plan else "")
        # The analyst's method and base rate are facts of the decision, not courtesy.
        if key in close:
            self.add("closing", list(close[key]), optional=not self.analyst)
        if self.analyst and plan is not None:
            self.add("base_rate", base_rate_sentences(plan))

    # -- the styles ------------------------------------------------------------------

    def write(self) -> list[Slot]:
        slots = self._write()
        limits = LENGTH.get(self.facts.audience)
        if limits is not None and _required_max_words(slots) > limits[1]:
            self.merge, self.slots = True, []
            slots = self._write()
        return slots

    def _write(self) -> list[Slot]:
        self.opening()
        compliance_reasons = (
            self.facts.audience is Audience.COMPLIANCE and self.adverse and self.facts.reasons
        )
        if self.style == "recourse_first":
            self.recourse()
        if self.style == "question_first":
            self._answer_first()
        elif compliance_reasons:
            self.reasons()
            if self.style == "compact":
                self.listing(self.items)
            else:
                self.body(self.items, previous=True)
        elif self.style == "compact":
            self.listing(self.items)
        else:
            self.body(self._contrastive_order())
        if self.style != "recourse_first" and not self.recourse():
            self.advice()
        self.closing()
        self._fit_length()
        return self.slots

    def _fit_length(self) -> None:
        """Keeps every text the grammar admits within the audience's length where the
        optional sentences allow: left out (longest texts over the limit) or required
        (shortest texts under it), in :data:`OPTIONAL_ORDER`."""
        limits = LENGTH.get(self.facts.audience)
        if limits is None:
            return
        low, high = limits

        def words(slot: Slot) -> list[int]:
            return [len(sentence.split()) for sentence in slot.sentences]

        def optional_in_order() -> list[Slot]:
            ranked = [s for s in self.slots if s.optional and s.name in OPTIONAL_ORDER]
            return sorted(ranked, key=lambda s: OPTIONAL_ORDER.index(s.name))

        while sum(max(words(s)) for s in self.slots) > high and optional_in_order():
            self.slots.remove(optional_in_order()[0])
        for slot in reversed(optional_in_order()):
            if sum(min(words(s)) for s in self.slots if not s.optional) >= low:
                break
            index = self.slots.index(slot)
            self.slots[index] = Slot(slot.name, slot.sentences, optional=False)

    def _contrastive_order(self) -> list[_Item]:
        if self.analyst:
            return self.items  # the plan's own order: |contribution|, both directions
        primary = [i for i in self.items if i.adverse == self.adverse]
        return primary + [i for i in self.items if i.adverse != self.adverse]

    def _answer_first(self) -> None:
        asked = asked_factors(self.facts)
        first = next((i for i in self.items if i.planned.feature in asked), None)
        if first is None:
            # The asked factor is one a principal reason states (compliance): the reasons
            # answer it, then the rest.
            self.reasons()
            self.body(self.items, previous=True)
            return
        side = _direction(first.adverse)
        self.add("answer", _sentences(self.bank["answer"][side], first, self._context(first)))
        self._aside(first)
        if self.facts.audience is Audience.COMPLIANCE and self.adverse and self.facts.reasons:
            self.reasons()
        rest = [i for i in self._contrastive_order() if i is not first]
        self.body(rest, previous=first.adverse, said=1)


def compose(
    facts: DecisionFacts, bank: dict[str, Any], style: str, phrasing: int | None = None
) -> list[Slot]:
    """The sentence slots of ``facts``'s explanation in ``style``; ``phrasing`` names every
    factor of the text one way (the bank's ``factor`` forms, in turn), so a text does not
    switch between "the length of the loan term (48 months)" and "duration_months = 48
    months"."""
    return _Writer(facts, bank, style, phrasing).write()
