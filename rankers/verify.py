"""The faithfulness gate: every claim a candidate makes, checked against the numbers.

A candidate is split into clauses; in each, the verifier finds which features it mentions
(manifest names, descriptions and aliases), the direction it states for them (with
negation, and the object: "raised the risk" vs "raised your chances"), importance claims
("the main reason", "followed by"), every number, category values, and the decision. Any
claim that contradicts the facts is a typed violation with its text span. Mentions of
protected attributes or of features the model does not use fail the candidate outright.
Hypothetical clauses ("a shorter term could lower the risk") make no claims of fact about
the decision and are not checked for direction.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from expound.facts import DecisionFacts

NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|(?<![\w.])[-+]?\d+(?:\.\d+)?%?")
PARTICLE_DIRECTION = re.compile(
    r"\b(?:push|pushed|pushes|bring|brought|brings|drove|drives|driven|sent|sends|moved|moves"
    r"|pulled|pulls|took|takes|nudged|nudges|tipped|tips)\s+(?:the\s+|your\s+|its\s+)?"
    r"(?:estimated\s+|predicted\s+|modelled\s+|modeled\s+)?"
    r"(?P<object>risk|score|risk score|likelihood of default|probability of default"
    r"|chances?(?: of approval)?|odds of approval|approval odds)"
    r"\s+(?P<particle>up|down|higher|lower)\b"
)
LIST_MARKER = re.compile(r"(?:^|[\s:;(])(\d)[.)]\s")
CLAUSE_BREAK = re.compile(r"[.;!?]\s+|[.;!?]$|\b(?:but|while|whereas|although|however)\b|\n")


class ViolationKind(StrEnum):
    """What a claim got wrong."""

    WRONG_DIRECTION = "WRONG_DIRECTION"
    WRONG_VALUE = "WRONG_VALUE"
    UNSUPPORTED_NUMBER = "UNSUPPORTED_NUMBER"
    UNUSED_FEATURE = "UNUSED_FEATURE"
    PROTECTED_ATTRIBUTE = "PROTECTED_ATTRIBUTE"
    WRONG_ORDER = "WRONG_ORDER"
    WRONG_DECISION = "WRONG_DECISION"
    EMPTY = "EMPTY"


@dataclass(frozen=True)
class Violation:
    """One unfaithful claim and where it is in the text."""

    kind: ViolationKind
    start: int
    end: int
    message: str

    def __str__(self) -> str:
        return f"{self.kind.value}[{self.start}:{self.end}]: {self.message}"


@dataclass
class Verdict:
    """The verifier's judgement of one candidate."""

    violations: list[Violation] = field(default_factory=list)
    mentioned: list[str] = field(default_factory=list)  # features, in order of first mention
    directions: dict[str, bool] = field(default_factory=dict)  # feature -> stated raises-risk
    stated_values: dict[str, bool] = field(default_factory=dict)  # feature -> value correct
    coverage: float = 0.0
    words: int = 0

    @property
    def passed(self) -> bool:
        """True when no claim contradicts the facts."""
        return not self.violations


@cache
def lexicon() -> dict[str, Any]:
    """The reviewed word lists (rankers/lexicon.json)."""
    loaded: dict[str, Any] = json.loads(
        resources.files("expound.rankers").joinpath("lexicon.json").read_text()
    )
    return loaded


@cache
def _compiled(terms: tuple[str, ...]) -> re.Pattern[str]:
    ordered = sorted(set(terms), key=len, reverse=True)
    # Look-arounds, not \b: a term may end in punctuation, e.g. "... (1: under 20%)".
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in ordered) + r")(?!\w)")


def _pattern(terms: list[str]) -> re.Pattern[str]:
    """A word-boundary regex matching any of ``terms`` (longest first); cached."""
    if not terms:
        raise ValueError("no terms to match")
    return _compiled(tuple(t.lower() for t in terms if t))


@dataclass(frozen=True)
class _Mention:
    feature: str
    start: int
    end: int


def _feature_terms(facts: DecisionFacts) -> dict[str, str]:
    terms: dict[str, str] = {}
    for spec in facts.manifest.features:
        for term in [spec.name.replace("_", " "), spec.description, *spec.aliases]:
            terms.setdefault(term.lower(), spec.name)
    return terms


def _find_mentions(text: str, terms: dict[str, str]) -> list[_Mention]:
    taken: list[tuple[int, int]] = []
    mentions = []
    for match in _pattern(list(terms)).finditer(text):
        if any(s < match.end() and match.start() < e for s, e in taken):
            continue
        taken.append((match.start(), match.end()))
        mentions.append(_Mention(terms[match.group(0)], match.start(), match.end()))
    return mentions


def _clauses(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in CLAUSE_BREAK.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _negated(text: str, position: int) -> bool:
    window = text[max(0, position - 20) : position]
    return bool(_pattern(lexicon()["negations"]).search(window))


def _stated_direction(clause: str) -> tuple[bool, int] | None:
    """(raises risk?, position) of the direction the clause states, if any."""
    words = lexicon()
    found: list[tuple[int, bool]] = []
    for match in _pattern(words["adverse_verbs"]).finditer(clause):
        found.append((match.start(), True))
    for match in _pattern(words["favourable_verbs"]).finditer(clause):
        found.append((match.start(), False))
    approval = _pattern(words["approval_objects"])
    for verbs, up in ((words["up_verbs"], True), (words["down_verbs"], False)):
        for match in _pattern(verbs).finditer(clause):
            after = clause[match.end() : match.end() + 40]
            object_is_approval = approval.match(after.strip().removeprefix("your ").strip())
            found.append((match.start(), up != bool(object_is_approval)))
    # Verb, object, particle: "pushed the estimated risk up", "brought your chances down".
    for match in PARTICLE_DIRECTION.finditer(clause):
        up = match.group("particle") in ("up", "higher")
        found.append((match.start(), up != bool(approval.match(match.group("object")))))
    if not found:
        return None
    position, raises = min(found)
    if _negated(clause, position):
        raises = not raises
    return raises, position


def _phrase_spans(phrases: set[str], text: str) -> list[tuple[int, int]]:
    kept = sorted({p.lower().rstrip(")") for p in phrases if len(p) > 3})
    return [(m.start(), m.end()) for m in _pattern(kept).finditer(text)] if kept else []


def _value_spans(facts: DecisionFacts, text: str) -> list[tuple[int, int]]:
    """Where the text quotes a value of this decision in the manifest's words."""
    phrases = set()
    for factor in facts.factors.values():
        phrases |= {factor.value_text, factor.value_text.replace(" (", ", ")}
    return _phrase_spans(phrases, text)


def _allowed_numbers(facts: DecisionFacts) -> list[float]:
    prediction, attributions = facts.prediction, facts.attributions
    numbers = [
        prediction.score,
        prediction.score * 100,
        prediction.threshold,
        prediction.threshold * 100,
        attributions.base_value,
        attributions.model_output,
        float(len(facts.reasons)),
    ]
    for factor in facts.factors.values():
        numbers += [factor.contribution, abs(factor.contribution)]
        if factor.number is not None:
            numbers.append(factor.number)
        texts = [factor.value_text, factor.description]
        numbers += [_parse_number(m.group(0)) for t in texts for m in NUMBER.finditer(t)]
    for reason in facts.reasons:
        numbers += [_parse_number(m.group(0)) for m in NUMBER.finditer(reason.text)]
    return numbers


def _parse_number(token: str) -> float:
    return float(token.replace(",", "").rstrip("%"))


def _number_supported(token: str, allowed: list[float]) -> bool:
    value = _parse_number(token)
    digits = token.rstrip("%").split(".")
    decimals = len(digits[1]) if len(digits) == 2 else 0
    tolerance = max(0.5 * 10**-decimals, 0.005 * abs(value))
    return any(abs(abs(value) - abs(a)) <= tolerance + 1e-9 for a in allowed)


def _category_claims(facts: DecisionFacts, clause: str, feature: str) -> bool | None:
    """Whether the clause names the feature's actual category (None: names none)."""
    spec = facts.manifest.feature(feature)
    if spec.type != "category":
        return None
    actual = facts.attributions.items[
        [i.feature for i in facts.attributions.items].index(feature)
    ].value
    named = set()
    for category in spec.categories or []:
        phrases = [category.replace("_", " "), spec.category_descriptions.get(category, "")]
        phrases = [p for p in phrases if len(p) > 3]
        if phrases and _pattern(phrases).search(clause):
            named.add(category)
    if not named:
        return None
    return actual in named


def verify(facts: DecisionFacts, text: str) -> Verdict:
    """Checks every claim of ``text`` against ``facts``."""
    verdict = Verdict(words=len(text.split()))
    if not text.strip():
        verdict.violations.append(Violation(ViolationKind.EMPTY, 0, 0, "empty candidate"))
        return verdict
    # Feature names may be written as identifiers (duration_months); "_" -> " " keeps spans.
    lowered = text.lower().replace("_", " ")
    words = lexicon()
    values = _value_spans(facts, lowered)
    # "existing credits paid back on time so far" is a value of credit_history, not a
    # mention of existing_credits.
    mentions = [
        m
        for m in _find_mentions(lowered, _feature_terms(facts))
        if not any(s <= m.start and m.end <= e for s, e in values)
    ]
    reasons = _phrase_spans({r.text for r in facts.reasons}, lowered)
    markers = [(m.start(1), m.end(1)) for m in LIST_MARKER.finditer(lowered)]
    names = [(m.start, m.end) for m in mentions] + reasons + markers
    known = names + values
    # A feature named inside a reason's text ("length or type of employment") stands for
    # the reason's group, whose contribution is what a stated direction must match.
    in_reason = {id(m) for m in mentions if any(s <= m.start and m.end <= e for s, e in reasons)}
    for kind, terms, what in (
        (ViolationKind.PROTECTED_ATTRIBUTE, words["protected_terms"], "protected attribute"),
        (ViolationKind.UNUSED_FEATURE, words["unused_terms"], "not a feature of this model"),
    ):
        for match in _pattern(terms).finditer(lowered):
            # "income" inside "instalment as a share of disposable income" names a feature,
            # "salary" inside a value's own description states that value.
            if any(s <= match.start() and match.end() <= e for s, e in known):
                continue
            verdict.violations.append(
                Violation(kind, match.start(), match.end(), f"{match.group(0)!r}: {what}")
            )
    for mention in mentions:
        if mention.feature not in verdict.mentioned:
            verdict.mentioned.append(mention.feature)
        if facts.manifest.feature(mention.feature).protected:
            verdict.violations.append(
                Violation(
                    ViolationKind.PROTECTED_ATTRIBUTE,
                    mention.start,
                    mention.end,
                    f"{mention.feature} is a protected attribute",
                )
            )
    _check_decision(facts, lowered, verdict)
    _check_numbers(facts, lowered, verdict)
    hypothetical = _pattern(words["hypotheticals"])
    factual: list[_Mention] = []
    for start, end in _clauses(lowered):
        clause = lowered[start:end]
        inside = [m for m in mentions if start <= m.start < end]
        if not inside or hypothetical.search(clause):
            continue
        factual += inside
        _check_clause(
            facts,
            clause,
            start,
            inside,
            _masked(lowered, known)[start:end],
            _masked(lowered, names)[start:end],
            in_reason,
            verdict,
        )
    # Advice ("you could look at the loan purpose") states no order of importance.
    _check_order(facts, lowered, factual, verdict)
    verdict.coverage = coverage(facts, verdict.mentioned)
    return verdict


def _check_decision(facts: DecisionFacts, text: str, verdict: Verdict) -> None:
    words = lexicon()
    hypothetical = _pattern(words["hypotheticals"])
    for start, end in _clauses(text):
        clause = text[start:end]
        if hypothetical.search(clause):
            continue
        labels = facts.manifest.decision
        # "Decision: decline", "outcome approve": the model's own labels after a decision word.
        stated_labels = [
            (
                re.compile(
                    rf"\b(?:decision|outcome|result)\W{{1,3}}(?:was\s+|is\s+|to\s+)*{label}\b"
                ),
                adv,
            )
            for label, adv in ((labels.favourable_label, False), (labels.adverse_label, True))
        ]
        patterns = [
            (_pattern(words["approve_words"]), False),
            (_pattern(words["decline_words"]), True),
            *stated_labels,
        ]
        for pattern, adverse in patterns:
            for match in pattern.finditer(clause):
                stated = adverse != _negated(clause, match.start())
                if stated != facts.prediction.adverse:
                    verdict.violations.append(
                        Violation(
                            ViolationKind.WRONG_DECISION,
                            start + match.start(),
                            start + match.end(),
                            f"states {'decline' if stated else 'approval'}, "
                            f"the decision was {facts.prediction.decision}",
                        )
                    )


def _check_numbers(facts: DecisionFacts, text: str, verdict: Verdict) -> None:
    allowed = _allowed_numbers(facts)
    markers = {m.start(1) for m in LIST_MARKER.finditer(text)}
    for match in NUMBER.finditer(text):
        if match.start() in markers:
            continue
        if not _number_supported(match.group(0), allowed):
            verdict.violations.append(
                Violation(
                    ViolationKind.UNSUPPORTED_NUMBER,
                    match.start(),
                    match.end(),
                    f"{match.group(0)} matches no fact of this decision",
                )
            )


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with feature names and quoted values blanked out, so that "supports" in
    "number of people the applicant supports" is not read as a verb of the sentence."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "x" * (end - start)
    return "".join(chars)


def _check_clause(
    facts: DecisionFacts,
    clause: str,
    offset: int,
    inside: list[_Mention],
    masked: str,
    numbers_only: str,
    in_reason: set[int],
    verdict: Verdict,
) -> None:
    stated = _stated_direction(masked)
    for mention in inside:
        factor = facts.factors[mention.feature]
        if stated is not None:
            raises, _ = stated
            # Reasons are adverse by definition: their groups pushed toward the outcome.
            expected = True if id(mention) in in_reason else factor.raises_risk
            if id(mention) not in in_reason:
                verdict.directions.setdefault(mention.feature, raises)
            if raises != expected:
                verdict.violations.append(
                    Violation(
                        ViolationKind.WRONG_DIRECTION,
                        offset,
                        offset + len(clause),
                        f"says {mention.feature} {'raised' if raises else 'lowered'} the "
                        f"risk; its contribution was {factor.contribution:+.3f}",
                    )
                )
        category_ok = _category_claims(facts, masked, mention.feature)
        number_ok = _numeric_value_ok(factor.number, numbers_only)
        for ok in (category_ok, number_ok):
            if ok is None:
                continue
            verdict.stated_values.setdefault(mention.feature, ok)
            if not ok:
                verdict.violations.append(
                    Violation(
                        ViolationKind.WRONG_VALUE,
                        offset,
                        offset + len(clause),
                        f"states a value of {mention.feature} other than {factor.value_text!r}",
                    )
                )


def _numeric_value_ok(actual: float | None, clause: str) -> bool | None:
    if actual is None:
        return None
    # ``clause`` is masked: numbers inside feature descriptions ("1: under 20%"), reason
    # texts and list markers ("2. ") are blanked out already.
    tokens = [m.group(0) for m in NUMBER.finditer(clause) if not m.group(0).endswith("%")]
    if not tokens:
        return None
    return any(_number_supported(t, [actual]) for t in tokens)


def _check_order(
    facts: DecisionFacts, text: str, mentions: list[_Mention], verdict: Verdict
) -> None:
    words = lexicon()
    ordered = facts.ordered
    if not ordered:
        return
    importance = {f.feature: f.importance for f in ordered}
    for match in _pattern(words["main_cues"]).finditer(text):
        after = [m for m in mentions if m.start >= match.end()]
        clause_end = next((e for s, e in _clauses(text) if s <= match.start() < e), len(text))
        first = next((m for m in after if m.start < clause_end), None)
        if first is not None and importance.get(first.feature) != 1:
            verdict.violations.append(
                Violation(
                    ViolationKind.WRONG_ORDER,
                    match.start(),
                    first.end,
                    f"calls {first.feature} the main factor; it is not",
                )
            )
    if _pattern(words["sequence_cues"]).search(text):
        seen: list[str] = []
        for mention in mentions:
            if mention.feature in importance and mention.feature not in seen:
                seen.append(mention.feature)
        for earlier, later in itertools.pairwise(seen):
            if (importance[earlier] or 0) > (importance[later] or 0):
                verdict.violations.append(
                    Violation(
                        ViolationKind.WRONG_ORDER,
                        0,
                        len(text),
                        f"orders {earlier} before {later}; the importance order is reversed",
                    )
                )


def coverage(facts: DecisionFacts, mentioned: list[str]) -> float:
    """Share of the decision's reasons (weighted by |contribution|) the text mentions."""
    if facts.prediction.adverse:
        groups = [(abs(r.contribution), set(r.features)) for r in facts.reasons]
    else:
        groups = [(abs(f.contribution), {f.feature}) for f in facts.ordered]
    total = sum(weight for weight, _ in groups)
    if total == 0:
        return 1.0
    named = set(mentioned)
    return sum(weight for weight, features in groups if features & named) / total
