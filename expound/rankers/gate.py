"""The faithfulness gate: every claim a candidate makes, checked against the numbers.

A candidate is split into clauses; in each, the verifier finds which features it mentions
(manifest names, descriptions and aliases), the direction it states for them (with
negation, and the object: "raised the risk" vs "raised your chances"), importance claims
("the main reason", "followed by"), every number, category values, and the decision. Any
claim that contradicts the facts is a typed violation with its text span. Mentions of
protected attributes or of features the model does not use fail the candidate outright.
Hypothetical clauses ("a shorter term could lower the risk") make no claims of fact about
the decision and are not checked for direction. Each quoted value is bound to the factor
named next to it (:mod:`expound.rankers.binding`), so two factors' values cannot trade
places; reason codes must be principal reasons, worded as themselves.

The claims a content plan makes possible are read in :mod:`expound.rankers.claims` and
checked against the plan recorded with the decision: percentiles, typical values, share
and magnitude words, the base rate, counterfactuals (only recorded, re-scored ones),
"exact" attributions (only from exact algorithms) and, for analyst and compliance texts,
coverage of the plan and the voice (the applicant in the third person, never "you"). The
gate fails closed: a clause naming a factor with a direction word it cannot read, or a
context claim tied to no factor, makes the candidate unverifiable.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field
from enum import StrEnum

from expound.domain import PrincipalReason
from expound.explainers.facts import DecisionFacts, value_text
from expound.explainers.recourse import Counterfactual
from expound.models.wording import category_phrases as category_phrases  # re-exported
from expound.models.wording import parenthesis_free
from expound.rankers import binding, categories, claims, ordering, quantities
from expound.rankers.reading import (
    LIST_MARKER,
    LOOKALIKES,
    NUMBER,
    Mention,
    Spans,
    blank_phrases,
    clauses,
    feature_terms,
    find_mentions,
    lexicon,
    masked,
    negated,
    number_supported,
    parse_number,
    pattern,
    phrase_spans,
    score_sense,
    stated_directions,
    unread_arrows,
)


class ViolationKind(StrEnum):
    """What a claim got wrong."""

    WRONG_DIRECTION = "WRONG_DIRECTION"
    WRONG_VALUE = "WRONG_VALUE"
    UNSUPPORTED_NUMBER = "UNSUPPORTED_NUMBER"
    UNUSED_FEATURE = "UNUSED_FEATURE"
    PROTECTED_ATTRIBUTE = "PROTECTED_ATTRIBUTE"
    WRONG_ORDER = "WRONG_ORDER"
    WRONG_DECISION = "WRONG_DECISION"
    WRONG_CONTEXT = "WRONG_CONTEXT"
    WRONG_COUNTERFACTUAL = "WRONG_COUNTERFACTUAL"
    WRONG_METHOD = "WRONG_METHOD"
    PLAN_NOT_COVERED = "PLAN_NOT_COVERED"
    # A reason code that is not a principal reason of the decision, or worded as another.
    WRONG_REASON = "WRONG_REASON"
    # A claim the verifier cannot read (a direction in words it does not know, a context
    # number tied to no factor): the candidate is unverified, never faithful.
    UNVERIFIABLE = "UNVERIFIABLE"
    # An analyst or compliance text that addresses its reader as "you"/"your": it speaks
    # of the applicant in the third person (the applicant's own texts are unaffected).
    WRONG_VOICE = "WRONG_VOICE"
    EMPTY = "EMPTY"


PROBLEM_KINDS = {
    "context": ViolationKind.WRONG_CONTEXT,
    "counterfactual": ViolationKind.WRONG_COUNTERFACTUAL,
    "method": ViolationKind.WRONG_METHOD,
    "coverage": ViolationKind.PLAN_NOT_COVERED,
    "reason": ViolationKind.WRONG_REASON,
    "value": ViolationKind.WRONG_VALUE,
    "voice": ViolationKind.WRONG_VOICE,
    "unreadable": ViolationKind.UNVERIFIABLE,
    "number": ViolationKind.UNSUPPORTED_NUMBER,
    "order": ViolationKind.WRONG_ORDER,
}
ORDINALS = ordering.ORDINALS
NUMBER_WORDS = ordering.NUMBER_WORDS
# A place in words or digits: "second", "2nd", "#2", "number 2", "number two".
_PLACE = (
    "("
    + "|".join(ORDINALS)
    + r"|[1-6](?:st|nd|rd|th)|#[1-6]|number [1-6]|number (?:"
    + "|".join(NUMBER_WORDS)
    + "))"
)
# A place in the importance order stated in words: "the second most important factor",
# "ranked third", "the fourth reason", "the #1 reason", "your 2nd-biggest factor".
ORDINAL = re.compile(
    rf"(?<!\w){_PLACE}[- ](?:most important|biggest|largest|strongest|main|principal|key)\b"
    rf"|\b(?:the|your|its|their|a) {_PLACE} (?:reason|factor)\b"
    rf"|\b(?:ranked|ranks|came|comes|placed|came in at|comes in at) {_PLACE}(?!\w)"
    rf"|\bin {_PLACE} place\b|\b(runner[- ]up)\b"
    # A place as the complement, its clause ending there: "your checking account is second".
    rf"|\b(?:is|are|was|were) {_PLACE}(?=\s*(?:[,.;:!?]|$))"
    # An item that names its place: "Reason #2: ...", "Factor two - ...", "Reason 1:".
    rf"|\b(?:reason|factor) (#?[1-6]|{'|'.join(NUMBER_WORDS)})(?=\s*[,:.)-])"
)
# "the most important factor after the loan term": a place after another's, not the main.
MAIN_AFTER = re.compile(
    r"\s+(?:(?:factor|reason|driver|cause|concern)s?\s+)?(?:after|behind)\s+"
    r"(?:(?:the|your|its|their)\s+)?"
)
# A main cue's clause that goes on with a claim of its own: "The loan term is the top
# factor, and your checking account is second" ("..., and so is X" is the same claim).
CLAUSE_GOES_ON = re.compile(
    r"(?:\s+\w+){0,2}?\s*(?:,\s*|\s+)(?:and|while|whereas)\s+(?!so\b|also\b|too\b|as\b)"
    r"(?:(?:the|your|its|their)\s+)?$"
)
AFTER_PLACE = re.compile(rf"(?<!\w){_PLACE}[- ]$")
PLACE_DIGIT = ordering.PLACE_DIGIT


def _place_digits(text: str) -> list[tuple[int, int]]:
    """The digits of places stated with them ("the #1 reason", "2nd-biggest", "1st: ..."):
    a place, like a list marker, states no number of the decision."""
    spans = []
    for match in ORDINAL.finditer(text):
        for word in (g for g in match.groups() if g):
            digit = PLACE_DIGIT.search(text, match.start(), match.end())
            if digit is not None and digit.group(0) in word:
                spans.append((digit.start(), digit.end()))
    return spans + ordering.place_digits(text)


SENTENCE_END = re.compile(r"[.!?](?=\s+\S|\s*$)")


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
    # The recorded counterfactuals the text states (each matched to the record).
    counterfactuals: list[Counterfactual] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no claim contradicts the facts."""
        return not self.violations


def _value_spans(facts: DecisionFacts, text: str) -> list[tuple[int, int]]:
    """Where the text quotes a value of this decision in the manifest's words."""
    phrases = set()
    for factor in facts.factors.values():
        # As stated directly, and as phrases write it inside parentheses.
        phrases |= {factor.value_text, parenthesis_free(factor.value_text)}
    return phrase_spans(phrases, text)


def _plan_value_texts(facts: DecisionFacts) -> list[tuple[str, str]]:
    """Values the plan records beside the applicant's, by feature: typical values and
    counterfactual ones."""
    plan = facts.plan
    if plan is None:
        return []
    manifest = facts.manifest
    texts = [
        (p.feature, value_text(manifest.feature(p.feature), p.typical_favourable))
        for p in plan.factors
        if p.typical_favourable is not None
    ]
    for counterfactual in plan.recourse.counterfactuals if plan.recourse else []:
        texts += [
            (c.feature, value_text(manifest.feature(c.feature), c.after))
            for c in counterfactual.changes
        ]
    return texts


def _allowed_numbers(facts: DecisionFacts) -> list[float]:
    """Every number a text about this decision may state: the decision's, every factor's,
    and the plan's."""
    numbers = _decision_numbers(facts)
    for feature in facts.factors:
        numbers += _factor_numbers(facts, feature)
    return numbers + _plan_numbers(facts)


def _factor_numbers(facts: DecisionFacts, feature: str) -> list[float]:
    """The numbers of one factor: its contribution, share, value and its words' numbers."""
    factor = facts.factors[feature]
    numbers = [
        factor.contribution,
        abs(factor.contribution),
        claims.share_of(facts, feature) * 100,
    ]
    if factor.number is not None:
        numbers.append(factor.number)
    for text in (factor.value_text, factor.description):
        numbers += [parse_number(m.group(0)) for m in NUMBER.finditer(text)]
    return numbers


def _plan_numbers(facts: DecisionFacts) -> list[float]:
    """The numbers the plan records: context, base rate, counterfactuals."""
    plan = facts.plan
    if plan is None:
        return []
    numbers: list[float] = []
    for planned in plan.factors:
        if planned.percentile is not None:
            numbers.append(float(planned.percentile))
        if isinstance(planned.typical_favourable, (int, float)):
            numbers.append(float(planned.typical_favourable))
    if plan.reference is not None:
        share = plan.reference.favourable_share * 100
        numbers += [share, 100 - share, plan.reference.mean_score, float(plan.reference.rows)]
    for counterfactual in plan.recourse.counterfactuals if plan.recourse else []:
        numbers.append(counterfactual.score)
        for change in counterfactual.changes:
            if isinstance(change.after, (int, float)) and not isinstance(change.after, bool):
                numbers.append(float(change.after))
    for _, quoted in _plan_value_texts(facts):
        numbers += [parse_number(m.group(0)) for m in NUMBER.finditer(quoted)]
    return numbers


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _add(verdict: Verdict, problems: list[claims.Problem]) -> None:
    verdict.violations += [
        Violation(PROBLEM_KINDS[p.kind], p.start, p.end, p.message) for p in problems
    ]


def _quantity_problems(
    facts: DecisionFacts,
    lowered: str,
    span: tuple[int, int],
    inside: list[Mention],
    known_masked: str,
    elsewhere: Spans,
    in_reason: dict[int, set[str]],
) -> list[claims.Problem]:
    """The quantities, percentages, size words and bare numbers of one factual clause
    (:mod:`expound.rankers.quantities`), up to its typical-value claim; a counterfactual's
    are the counterfactual reader's. ``in_reason``: the mentions inside a reason's text (by
    id), each with its reason's features."""
    start, end = span
    clause = lowered[start:end]
    if claims.COUNTERFACTUAL.search(clause):
        return []
    cut = claims.typical_cut(clause)
    problems = quantities.quantity_problems(facts, clause[:cut], start, inside, elsewhere)
    own = [m for m in inside if id(m) not in in_reason]
    subjects = own or inside
    numbers = _blank(known_masked[start : start + cut], claims.percentile_spans(clause))
    problems += quantities.fraction_problems(
        facts, numbers, start, subjects[0].feature if subjects else None
    )
    if not subjects:
        problems += quantities.unowned_share_problems(numbers, start, elsewhere)
    else:
        problems += quantities.percent_problems(
            facts, numbers, start, subjects[0].feature, elsewhere
        )
        problems += quantities.size_problems(facts, clause[:cut], start, own, elsewhere)
        problems += _misplaced_numbers(facts, numbers, start, inside, elsewhere, in_reason)
    return problems


def _misplaced_numbers(
    facts: DecisionFacts,
    numbers: str,
    offset: int,
    inside: list[Mention],
    elsewhere: Spans,
    in_reason: dict[int, set[str]],
) -> list[claims.Problem]:
    """A bare number of a clause naming factors ("(48)", "by 0.825") is the decision's or
    of the factor it is said of: the last one named before it (the subject of "raised the
    risk by 0.825"), else the first after. Any number of any factor in the clause was
    accepted: "the loan term and your savings (48)", two magnitudes traded, passed.

    ``numbers``: the clause with names and quoted values blanked (same length).
    """
    decision = _decision_numbers(facts)
    markers = {m.start(1) for m in LIST_MARKER.finditer(numbers)}
    read = Spans(quantities.quantity_spans(facts, numbers))
    problems = []
    for match in NUMBER.finditer(numbers):
        start, end = offset + match.start(), offset + match.end()
        if (
            match.group(0).endswith("%")
            or match.start() in markers
            or read.hold(match.start(), match.end())
            or elsewhere.hold(start, end)
        ):
            continue
        said = _said_of(inside, start, end)
        if said is None:
            continue
        features = in_reason.get(id(said), {said.feature})
        allowed = decision + [n for f in sorted(features) for n in _factor_numbers(facts, f)]
        if not number_supported(match.group(0), allowed):
            problems.append(
                claims.Problem(
                    "unreadable",
                    start,
                    end,
                    f"{match.group(0)} is no number of {said.feature}, the factor it is said of",
                )
            )
    return problems


def _said_of(inside: list[Mention], start: int, end: int) -> Mention | None:
    """The factor a bare number at [start, end) of the text is said of: the last one named
    before it (the subject of "raised the risk by 0.825"), else the first after."""
    before = [m for m in inside if m.end <= start]
    after = [m for m in inside if m.start >= end]
    return before[-1] if before else (after[0] if after else None)


def _numbers_said_of_others(
    numbers: str, offset: int, inside: list[Mention], mention: Mention
) -> list[tuple[int, int]]:
    """Spans of ``numbers`` (a clause at ``offset``) holding bare numbers said of a factor
    other than ``mention``'s: "..., and your checking account raised it by 0.825" states
    no value of the loan term named before."""
    spans = []
    for match in NUMBER.finditer(numbers):
        said = _said_of(inside, offset + match.start(), offset + match.end())
        if said is not None and said.feature != mention.feature:
            spans.append((match.start(), match.end()))
    return spans


def _add_once(verdict: Verdict, violation: Violation) -> None:
    """Adds ``violation`` unless the verdict holds the same one (a factor named twice in a
    clause is judged twice, alike)."""
    if violation not in verdict.violations:
        verdict.violations.append(violation)


def verify(facts: DecisionFacts, text: str) -> Verdict:
    """Checks every claim of ``text`` against ``facts``."""
    verdict = Verdict(words=len(text.split()))
    if not text.strip():
        verdict.violations.append(Violation(ViolationKind.EMPTY, 0, 0, "empty candidate"))
        return verdict
    # Feature names may be written as identifiers (duration_months); "_" -> " " keeps spans.
    lowered = text.lower().replace("_", " ").translate(LOOKALIKES)
    words = lexicon()
    values = _value_spans(facts, lowered)
    # Each quoted value is bound to the factor its clause names next to it.
    ordered, owners = sorted(values), binding.value_owners(facts)
    # "existing credits paid back on time so far" is a value of credit_history, not a
    # mention of existing_credits.
    inside_values = Spans(values)
    # ... but "checking account" inside the actual "no checking account" is that factor
    # named: dropped, its direction and place went unread ("Having no checking account
    # raised the risk" passed on an approval).
    own_values = {
        feature: Spans(phrase_spans(set(forms), lowered))
        for feature, forms in binding.self_named_values(facts).items()
    }
    # Values the plan quotes (typical, counterfactual) hold names of other features too;
    # a feature named inside a quoted value of its own is still a mention of it.
    quoted: dict[str, list[tuple[int, int]]] = {}
    for feature, text in _plan_value_texts(facts):
        spans = phrase_spans({text, parenthesis_free(text)}, lowered)
        quoted.setdefault(feature, []).extend(spans)
    inside_quoted = {feature: Spans(spans) for feature, spans in quoted.items()}
    mentions = [
        m
        for m in find_mentions(lowered, feature_terms(facts))
        if (
            not inside_values.hold(m.start, m.end)
            or (m.feature in own_values and own_values[m.feature].hold(m.start, m.end))
        )
        and not any(
            f != m.feature and held.hold(m.start, m.end) for f, held in inside_quoted.items()
        )
    ]
    # Each wording (as matched: lowered) -> its reason; one scan finds them all.
    reason_of: dict[str, PrincipalReason] = {}
    for reason in facts.reasons:
        for wording in facts.reason_wordings(reason):
            reason_of.setdefault(wording.lower().rstrip(")"), reason)
    reasons = phrase_spans(set(reason_of), lowered)
    markers = [(m.start(1), m.end(1)) for m in LIST_MARKER.finditer(lowered)]
    markers += _place_digits(lowered)
    names = [(m.start, m.end) for m in mentions] + reasons + markers
    known = names + values
    # A feature named inside a reason's text ("length or type of employment") stands for
    # the reason's group, whose contribution is what a stated direction must match.
    inside_reasons = Spans(reasons)
    in_reason = {id(m) for m in mentions if inside_reasons.hold(m.start, m.end)}
    groups = binding.reason_groups(facts)
    reason_group = {
        id(m): groups.get(m.feature, {m.feature}) for m in mentions if id(m) in in_reason
    }
    # Values the plan quotes (typical, counterfactual) may hold such words too ("salary
    # paid in"); they are not masked for the value checks, where they would hide a wrong
    # value of the applicant's.
    plan_values = [span for spans in quoted.values() for span in spans]
    # A value's words inside a name or a quoted value ("100 DM" in a typical "less than 100
    # DM") state no value of their own.
    inside_names = Spans(names + plan_values)
    inside_known = Spans(known + plan_values)
    for kind, terms, what in (
        (ViolationKind.PROTECTED_ATTRIBUTE, words["protected_terms"], "protected attribute"),
        (ViolationKind.UNUSED_FEATURE, words["unused_terms"], "not a feature of this model"),
    ):
        for match in pattern(terms).finditer(lowered):
            # "income" inside "instalment as a share of disposable income" names a feature,
            # "salary" inside a value's own description states that value.
            if inside_known.hold(match.start(), match.end()):
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
    hypothetical = pattern(words["hypotheticals"])
    factual: list[Mention] = []
    factual_clauses: list[tuple[int, int]] = []
    # Masked once for the whole text, then sliced per clause: masking per clause was
    # quadratic in the length of the candidate.
    known_masked, names_masked = masked(lowered, known), masked(lowered, names)
    # Quantities, percentages and size words are read outside names, quoted values and
    # any value phrase of the manifest (read as those).
    elsewhere = Spans(names + plan_values + values + quantities.value_phrase_spans(facts, lowered))
    # Clauses and mentions both run left to right: one walk pairs them.
    pending = iter(mentions)
    upcoming = next(pending, None)
    for start, end in clauses(lowered):
        inside = []
        while upcoming is not None and upcoming.start < end:
            if upcoming.start >= start:
                inside.append(upcoming)
            upcoming = next(pending, None)
        clause = lowered[start:end]
        if hypothetical.search(clause):
            continue
        factual_clauses.append((start, end))
        _add(
            verdict,
            _quantity_problems(
                facts, lowered, (start, end), inside, known_masked, elsewhere, reason_group
            ),
        )
        if not inside:
            # A percentile, typical value or share with no factor named: unreadable.
            _add(verdict, claims.context_problems(facts, clause, start, []))
            continue
        factual += inside
        _add(
            verdict,
            binding.misbound_values(
                lowered, (start, end), inside, ordered, owners, inside_names, reason_group
            ),
        )
        _check_clause(
            facts,
            clause,
            start,
            inside,
            known_masked[start:end],
            names_masked[start:end],
            in_reason,
            verdict,
        )
    # Advice ("you could look at the loan purpose") states no order of importance.
    in_factual = Spans(factual_clauses)
    named_reasons = [
        (start, end, reason_of[lowered[start:end]])
        for start, end in reasons
        if in_factual.hold(start, end)
    ]
    _check_order(facts, lowered, factual, named_reasons, verdict)
    # Each mention placed in its sentence by bisection: a scan per sentence was quadratic.
    sentences = _sentences(lowered)
    starts = [a for a, _ in sentences]
    named: dict[tuple[int, int], set[str]] = {span: set() for span in sentences}
    for mention in mentions:
        at = bisect.bisect_right(starts, mention.start) - 1
        if at >= 0:
            named[sentences[at]].add(mention.feature)
    problems, verdict.counterfactuals = claims.counterfactual_problems(facts, lowered, named)
    _add(verdict, problems)
    _add(verdict, claims.base_rate_problems(facts, lowered))
    _add(verdict, quantities.decision_number_problems(facts, lowered))
    _add(verdict, claims.method_problems(facts, lowered))
    _add(verdict, claims.coverage_problems(facts, lowered, verdict.mentioned))
    _add(verdict, claims.reason_code_problems(facts, lowered))
    # A feature's description or a value as the manifest words it is quoted, not spoken:
    # a manifest that says "you" there puts it in every text, the deterministic one too.
    described = {s.description.lower().replace("_", " ") for s in facts.manifest.features}
    manifest_words = [(m.start, m.end) for m in mentions if lowered[m.start : m.end] in described]
    _add(
        verdict, claims.voice_problems(facts, lowered, Spans(manifest_words + values + plan_values))
    )
    verdict.coverage = coverage(facts, verdict.mentioned)
    return verdict


def verify_candidate(facts: DecisionFacts, text: str) -> Verdict:
    """Checks a whole candidate explanation: every claim (:func:`verify`), and that it
    explains something, naming at least one factor of its plan (or a principal reason).

    A text of true sentences that says nothing about the decision ("Sometimes you need to
    go the extra mile", written by a small model in free mode) passes :func:`verify`,
    which judges claims; as an explanation it must not pass. Analyst and compliance texts
    are held to the whole plan by :func:`verify` already.
    """
    verdict = verify(facts, text)
    if not verdict.violations and not _names_a_factor(facts, text, verdict):
        verdict.violations.append(
            Violation(
                ViolationKind.PLAN_NOT_COVERED,
                0,
                len(text),
                "names no factor of the decision: it explains nothing",
            )
        )
    return verdict


def _names_a_factor(facts: DecisionFacts, text: str, verdict: Verdict) -> bool:
    wanted = (
        {p.feature for p in facts.plan.factors} if facts.plan is not None else set(facts.factors)
    )
    if wanted & set(verdict.mentioned):
        return True
    lowered = text.lower()
    return any(
        wording.lower() in lowered
        for reason in facts.reasons
        for wording in facts.reason_wordings(reason)
    )


def _check_decision(facts: DecisionFacts, text: str, verdict: Verdict) -> None:
    words = lexicon()
    hypothetical = pattern(words["hypotheticals"])
    for start, end in clauses(text):
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
            (pattern(words["approve_words"]), False),
            (pattern(words["decline_words"]), True),
            *stated_labels,
        ]
        for finder, adverse in patterns:
            for match in finder.finditer(clause):
                stated = adverse != negated(clause, match.start())
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
    markers |= {start for start, _ in _place_digits(text)}
    for match in NUMBER.finditer(text):
        if match.start() in markers:
            continue
        if not number_supported(match.group(0), allowed):
            verdict.violations.append(
                Violation(
                    ViolationKind.UNSUPPORTED_NUMBER,
                    match.start(),
                    match.end(),
                    f"{match.group(0)} matches no fact of this decision",
                )
            )


def _check_clause(
    facts: DecisionFacts,
    clause: str,
    offset: int,
    inside: list[Mention],
    masked: str,
    numbers_only: str,
    in_reason: set[int],
    verdict: Verdict,
) -> None:
    sense = score_sense(facts)
    directions = stated_directions(masked, score_is_approval=bool(sense))
    stated = directions[0] if directions else None
    _check_unread_symbols(facts, masked, offset, directions, sense, verdict)
    # A feature named outside a reason's text is the subject; else the reason's own.
    subjects = [m.feature for m in inside if id(m) not in in_reason] or [m.feature for m in inside]
    _add(verdict, claims.context_problems(facts, clause, offset, subjects))
    # Context claims are read above; what is left of the clause states the factor's value.
    cut = claims.typical_cut(clause)
    numbers_only = _blank(numbers_only[:cut], claims.percentile_spans(clause))
    masked_value = _blank(masked[:cut], claims.percentile_spans(clause))
    # What is left of the value once every value phrase of the manifest is read.
    unphrased = _blank(masked_value, quantities.value_phrase_spans(facts, masked_value))
    contrast = claims.CONTRAST.search(masked)
    # One factor set against the other way is the service's own ("in the opposite
    # direction, the savings lowered the risk"); two in one clause cannot be told apart.
    if contrast is not None and len(set(subjects)) > 1:
        verdict.violations.append(
            Violation(
                ViolationKind.UNVERIFIABLE,
                offset + contrast.start(),
                offset + contrast.end(),
                f"{contrast.group(0)!r} sets factors against each other; the verifier cannot "
                "read which direction is whose",
            )
        )
    if stated is None and subjects:
        shares = [(m.start(), m.end()) for m in claims.SHARE.finditer(masked)]
        hint = claims.DIRECTION_HINTS.search(_blank(masked, shares))
        if hint is not None:
            verdict.violations.append(
                Violation(
                    ViolationKind.UNVERIFIABLE,
                    offset + hint.start(),
                    offset + hint.end(),
                    f"{hint.group(0)!r} may state a direction of {subjects[0]} the verifier "
                    "cannot read",
                )
            )
    for mention in inside:
        factor = facts.factors[mention.feature]
        said = _direction_of(mention.end - offset, directions)
        if said is not None:
            raises, _ = said
            # Reasons are adverse by definition: their groups pushed toward the outcome.
            expected = True if id(mention) in in_reason else factor.raises_risk
            if id(mention) not in in_reason:
                verdict.directions.setdefault(mention.feature, raises)
            if raises != expected:
                # Once per factor and clause: "the status of the checking account (no
                # checking account)" names it twice.
                _add_once(
                    verdict,
                    Violation(
                        ViolationKind.WRONG_DIRECTION,
                        offset,
                        offset + len(clause),
                        f"says {mention.feature} {'raised' if raises else 'lowered'} the "
                        f"risk; its contribution was {factor.contribution:+.3f}",
                    ),
                )
        around = (mention.start - offset, mention.end - offset)
        category_ok = categories.category_claims(
            facts, masked_value, mention.feature, clause[: len(masked_value)], around
        )
        _add(
            verdict,
            categories.unbound_value_words(facts, unphrased, offset, mention.feature)
            + categories.absence_problems(facts, clause, offset, mention.feature, around[0]),
        )
        labels = list(facts.manifest.feature(mention.feature).value_labels.values())
        if labels and pattern(labels).search(clause[: len(masked_value)]):
            # A banded code stated by a label ("25 to 35%") is read above (the actual one
            # masked as this decision's value, any other named); the clause's numbers are
            # then the label's, the effect's or another factor's, not the code.
            number_ok = None
        elif labels:
            # No label named: a bare code ("(3)") is read here, not the label's numbers nor
            # the contribution ("by 0.326").
            left = blank_phrases(numbers_only, labels)
            number_ok = _numeric_value_ok(
                factor.number, _blank_numbers(left, _effect_numbers(facts, mention.feature))
            )
        else:
            # Nor a magnitude of its own, written with decimals ("raised the risk by
            # 1.255"; a value of 1 is no magnitude of 0.584): a bare number is bound to the
            # factor it is said of (_misplaced_numbers).
            others = quantities.other_quantity_spans(facts, numbers_only, mention.feature)
            magnitudes = [
                (m.start(), m.end())
                for m in NUMBER.finditer(numbers_only)
                if "." in m.group(0) and number_supported(m.group(0), [abs(factor.contribution)])
            ]
            # A number said of another factor of the clause is read as that one's.
            theirs = _numbers_said_of_others(numbers_only, offset, inside, mention)
            number_ok = _numeric_value_ok(
                factor.number, _blank(numbers_only, others + magnitudes + theirs)
            )
        for ok in (category_ok, number_ok):
            if ok is None:
                continue
            verdict.stated_values.setdefault(mention.feature, ok)
            if not ok:
                _add_once(
                    verdict,
                    Violation(
                        ViolationKind.WRONG_VALUE,
                        offset,
                        offset + len(clause),
                        f"states a value of {mention.feature} other than {factor.value_text!r}",
                    ),
                )
    _check_clause_numbers(facts, offset, inside, numbers_only, verdict)


def _check_unread_symbols(
    facts: DecisionFacts,
    masked: str,
    offset: int,
    directions: list[tuple[bool, int]],
    sense: bool | None,
    verdict: Verdict,
) -> None:
    """Fail closed on direction marks the verifier cannot read in a clause naming factors:
    an arrow without the risk or the approval as its object ("loan term ↑"), and a bare
    "score" as the object of a direction when the manifest does not say which side a higher
    score is (:func:`~expound.rankers.reading.score_sense`)."""
    for start, end in unread_arrows(masked):
        verdict.violations.append(
            Violation(
                ViolationKind.UNVERIFIABLE,
                offset + start,
                offset + end,
                f"{masked[start:end]!r} may state a direction the verifier cannot read",
            )
        )
    if sense is None and directions != stated_directions(masked, score_is_approval=True):
        verdict.violations.append(
            Violation(
                ViolationKind.UNVERIFIABLE,
                offset,
                offset + len(masked),
                "states a direction of the score; the manifest's score_meaning "
                f"({facts.manifest.score_meaning!r}) does not say whether a higher score is "
                "the risk or the approval",
            )
        )


def _direction_of(mention_end: int, directions: list[tuple[bool, int]]) -> tuple[bool, int] | None:
    """The direction a clause states of the factor named ending at ``mention_end``.

    A clause stating one way (however many times) states it of every factor in it ("the
    loan term and the savings raised the risk"). A clause stating both ways joins factors
    each with its own ("the loan term raised the risk, and the savings lowered it"): a
    factor takes the first direction after its name (its verb), or the last one before it
    when none follows ("..., as did the savings").
    """
    if not directions:
        return None
    if len({raises for raises, _ in directions}) == 1:
        return directions[0]
    after = [direction for direction in directions if direction[1] >= mention_end]
    return after[0] if after else directions[-1]


def _decision_numbers(facts: DecisionFacts) -> list[float]:
    """Numbers any clause may state: the score, threshold, base value, output, reasons."""
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
    for reason in facts.reasons:
        for wording in facts.reason_wordings(reason):
            numbers += [parse_number(m.group(0)) for m in NUMBER.finditer(wording)]
    return numbers


def _check_clause_numbers(
    facts: DecisionFacts, offset: int, inside: list[Mention], numbers: str, verdict: Verdict
) -> None:
    """Fail closed: every number of a clause naming factors is one of theirs (value,
    contribution) or of the decision; any other number cannot be read as a claim."""
    allowed = _decision_numbers(facts)
    for mention in inside:
        allowed += _factor_numbers(facts, mention.feature)
    markers = {m.start(1) for m in LIST_MARKER.finditer(numbers)}
    for match in NUMBER.finditer(numbers):
        if match.start() in markers or number_supported(match.group(0), allowed):
            continue
        verdict.violations.append(
            Violation(
                ViolationKind.UNVERIFIABLE,
                offset + match.start(),
                offset + match.end(),
                f"{match.group(0)} is no number of {', '.join(m.feature for m in inside)}",
            )
        )


def _effect_numbers(facts: DecisionFacts, feature: str) -> list[float]:
    """The numbers of a factor's effect, not of its value: contribution and share."""
    factor = facts.factors[feature]
    return [abs(factor.contribution), claims.share_of(facts, feature) * 100]


def _blank_numbers(text: str, numbers: list[float]) -> str:
    """``text`` with the numbers that are one of ``numbers`` blanked."""
    spans = [
        (m.start(), m.end()) for m in NUMBER.finditer(text) if number_supported(m.group(0), numbers)
    ]
    return _blank(text, spans)


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (min(end, len(chars)) - start) if start < len(chars) else ""
    return "".join(chars)


def _numeric_value_ok(actual: float | None, clause: str) -> bool | None:
    if actual is None:
        return None
    # ``clause`` is masked: numbers inside feature descriptions ("1: under 20%"), reason
    # texts and list markers ("2. ") are blanked out already.
    tokens = [m.group(0) for m in NUMBER.finditer(clause) if not m.group(0).endswith("%")]
    if not tokens:
        return None
    return any(number_supported(t, [actual]) for t in tokens)


def _check_order(
    facts: DecisionFacts,
    text: str,
    mentions: list[Mention],
    named_reasons: list[tuple[int, int, PrincipalReason]],
    verdict: Verdict,
) -> None:
    """Checks the order the text states against the importance order.

    Args:
        mentions: the factual mentions of features.
        named_reasons: the principal reasons named by their text in factual clauses, with
            their spans: each stands where it is for its group's most important feature
            ("1. Other credit obligations (9 credits)" names none of its features' terms).
    """
    words = lexicon()
    ordered = facts.ordered
    if not ordered:
        return
    importance = {f.feature: f.importance for f in ordered}
    mentions = list(mentions)
    for start, end, reason in named_reasons:
        ranked = [name for name in reason.features if importance.get(name) is not None]
        if ranked:
            best = min(ranked, key=lambda name: importance[name] or 0)
            mentions.append(Mention(best, start, end))
    mentions.sort(key=lambda m: m.start)
    # Looked up by bisection: a scan of every clause and mention per cue was quadratic.
    spans = clauses(text)
    clause_starts = [s for s, _ in spans]
    mention_starts = [m.start for m in mentions]
    sequence = pattern(words["sequence_cues"])
    for match in pattern(words["main_cues"]).finditer(text):
        if AFTER_PLACE.search(text, max(0, match.start() - 8), match.start()):
            # "the second most important factor" is read as a place (ORDINAL), not the main.
            continue
        at = bisect.bisect_right(clause_starts, match.start()) - 1
        in_clause = at >= 0 and match.start() < spans[at][1]
        clause_end = spans[at][1] if in_clause else len(text)
        next_mention = bisect.bisect_left(mention_starts, match.end())
        first = mentions[next_mention] if next_mention < len(mentions) else None
        if first is not None and first.start >= clause_end:
            first = None
        before = [
            m
            for m in mentions[:next_mention]
            if in_clause and m.start >= spans[at][0] and m.end <= match.start()
        ]
        behind = MAIN_AFTER.match(text, match.end())
        if behind is not None and first is not None and first.start == behind.end():
            # "Your savings were the most important factor after the loan term": the place
            # after the loan term's, not the main; said of the factor named before the cue,
            # else of the one after the loan term ("the biggest factor after X was Y").
            beyond = mentions[next_mention + 1 : next_mention + 2]
            said = before[-1] if before else (beyond[0] if beyond else None)
            if said is not None and said.start < clause_end:
                _check_place_after(importance, first, said, match.start(), verdict)
            continue
        main_before = any(importance.get(m.feature) == 1 for m in before)
        if (
            first is not None
            and main_before
            and (
                sequence.search(text, match.end(), first.start) is not None
                or CLAUSE_GOES_ON.match(text, match.end(), first.start) is not None
            )
        ):
            # "The loan term was the most important factor, followed by the checking
            # account" (or "..., and your checking account is second"): the cue is the
            # factor's before it; the one after comes next, in a claim of its own.
            first = None
        elif first is None and before and not main_before:
            # "Your checking account was the most important factor": the factor named
            # before the cue, when none follows it in its clause (one of them the main).
            first = before[-1]
        if first is not None and importance.get(first.feature) != 1:
            verdict.violations.append(
                Violation(
                    ViolationKind.WRONG_ORDER,
                    min(match.start(), first.start),
                    max(match.end(), first.end),
                    f"calls {first.feature} the main factor; it is not",
                )
            )
    _check_claimed_weights(facts, text, mentions, spans, importance, verdict)
    _check_numbered_list(facts, text, mentions, importance, verdict)
    weights = {m.feature: _weight(facts, importance, m.feature) for m in mentions}
    _add(
        verdict,
        ordering.listed_order_problems(facts, text, mentions, _sentences(text), importance),
    )
    _add(verdict, ordering.ordinal_item_problems(text, mentions, importance))
    _add(verdict, ordering.plural_main_problems(facts, text, mentions, spans, importance))
    _add(verdict, ordering.equal_weight_problems(facts, text, mentions, spans, weights))
    _add(
        verdict,
        ordering.bare_comparative_problems(text, mentions, spans, _sentences(text), weights),
    )
    # "Second, ..." marking an item places it (read above), whatever order it is written in.
    items = Spans(ordering.item_marker_spans(text))
    if any(
        not items.hold(m.start(), m.end()) for m in pattern(words["sequence_cues"]).finditer(text)
    ):
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


def _check_place_after(
    importance: dict[str, int | None],
    behind: Mention,
    said: Mention,
    cue_start: int,
    verdict: Verdict,
) -> None:
    """ "``said`` was the most important factor after ``behind``": ``said`` holds the place
    right after ``behind``'s; a factor ``behind`` that is no principal one has no place to
    come after, and cannot be read."""
    place = importance.get(behind.feature)
    start, end = min(cue_start, said.start), max(behind.end, said.end)
    if place is None:
        verdict.violations.append(
            Violation(
                ViolationKind.UNVERIFIABLE,
                start,
                end,
                f"places {said.feature} after {behind.feature}, which has no place in the "
                "importance order",
            )
        )
    elif importance.get(said.feature) != place + 1:
        verdict.violations.append(
            Violation(
                ViolationKind.WRONG_ORDER,
                start,
                end,
                f"places {said.feature} right after {behind.feature} (rank {place}); its "
                f"rank is {importance.get(said.feature)}",
            )
        )


def _check_claimed_weights(
    facts: DecisionFacts,
    text: str,
    mentions: list[Mention],
    spans: list[tuple[int, int]],
    importance: dict[str, int | None],
    verdict: Verdict,
) -> None:
    """Checks the weights a clause claims in words: a principal factor dismissed ("the loan
    term did not matter", "was a minor factor") and comparisons ("the savings mattered more
    than the loan term": the factor named first outweighs the one after the cue)."""
    words = lexicon()
    dismissal = pattern(words["dismissal_cues"])
    compared = [(pattern(words["comparative_cues"][k]), k == "more") for k in ("more", "less")]
    # Each clause's mentions found by bisection: a scan of every mention per clause was
    # quadratic in the length of the candidate.
    starts = [m.start for m in mentions]
    for start, end in spans:
        inside = mentions[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]
        if not inside:
            continue
        clause = text[start:end]
        for match in ORDINAL.finditer(clause):
            # "The loan term was the second most important factor", "the fourth reason was
            # your savings": the factor named before the ordinal, else the one after it.
            at = start + match.start()
            before = [m for m in inside if m.end <= at]
            after = [m for m in inside if m.start >= start + match.end()]
            said = before[-1] if before else (after[0] if after else None)
            place = ordering.place_of(next(g for g in match.groups() if g))
            if said is not None and importance.get(said.feature) != place:
                verdict.violations.append(
                    Violation(
                        ViolationKind.WRONG_ORDER,
                        at,
                        start + match.end(),
                        f"places {said.feature} {match.group(0)!r}; its rank is "
                        f"{importance.get(said.feature)}",
                    )
                )
        for match in dismissal.finditer(clause):
            for mention in inside:
                if importance.get(mention.feature) is not None:
                    verdict.violations.append(
                        Violation(
                            ViolationKind.WRONG_ORDER,
                            start + match.start(),
                            start + match.end(),
                            f"calls {mention.feature} of little weight; it is a principal "
                            f"factor (rank {importance[mention.feature]})",
                        )
                    )
        found = [(match, more) for finder, more in compared for match in finder.finditer(clause)]
        for match, more in found:
            if any(
                other.start() <= match.start()
                and match.end() <= other.end()
                and other.end() - other.start() > match.end() - match.start()
                for other, _ in found
            ):
                # "outweighed" inside "outweighed by": the longer cue is the one written.
                continue
            at = start + match.start()
            left = [m for m in inside if m.end <= at]
            right = [m for m in inside if m.start >= start + match.end()]
            if not left or not right:
                continue
            heavier, lighter = (left[-1], right[0]) if more else (right[0], left[-1])
            if _weight(facts, importance, heavier.feature) <= _weight(
                facts, importance, lighter.feature
            ):
                verdict.violations.append(
                    Violation(
                        ViolationKind.WRONG_ORDER,
                        at,
                        start + match.end(),
                        f"says {heavier.feature} weighed more than {lighter.feature}; "
                        "it weighed less",
                    )
                )


def _check_numbered_list(
    facts: DecisionFacts,
    text: str,
    mentions: list[Mention],
    importance: dict[str, int | None],
    verdict: Verdict,
) -> None:
    """A numbered list ("1. Loan term 2. Checking account", "1) savings 2) loan term")
    states an order of importance of its own: each item's first ranked factor (an item runs
    to the next marker, or to the end of its line or sentence) must not outrank the one
    before it. Features of one reason code rank together."""
    markers = list(LIST_MARKER.finditer(text))
    first = next((i for i, m in enumerate(markers) if m.group(1) == "1"), None)
    if first is None:
        return
    items: list[tuple[int, int]] = []
    for number, marker in enumerate(markers[first:], start=1):
        if marker.group(1) != str(number):
            break
        items.append((marker.end(), marker.end()))
    if len(items) < 2:
        return
    ends = [start for start, _ in items[1:]]
    last = items[-1][0]
    stop = re.compile(r"\n|[.;!?](?:\s|$)").search(text, last)
    ends.append(stop.start() if stop is not None else len(text))
    groups = binding.reason_groups(facts)
    ranked: list[Mention] = []
    for (start, _), end in zip(items, ends, strict=True):
        item = next(
            (
                m
                for m in mentions
                if start <= m.start < end and importance.get(m.feature) is not None
            ),
            None,
        )
        if item is not None:
            ranked.append(item)
    for earlier, later in itertools.pairwise(ranked):
        if later.feature in groups.get(earlier.feature, {earlier.feature}):
            continue
        if (importance[earlier.feature] or 0) > (importance[later.feature] or 0):
            verdict.violations.append(
                Violation(
                    ViolationKind.WRONG_ORDER,
                    earlier.start,
                    later.end,
                    f"lists {earlier.feature} before {later.feature}; the importance order "
                    "is reversed",
                )
            )


def _weight(facts: DecisionFacts, importance: dict[str, int | None], feature: str) -> float:
    """How much a factor weighed: its place in the importance order when ranked (a reason's
    group ranks together), else its |contribution| below every ranked one."""
    rank = importance.get(feature)
    if rank is not None:
        return 1e6 - rank
    factor = facts.factors.get(feature)
    return abs(factor.contribution) if factor is not None else 0.0


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
