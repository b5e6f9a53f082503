"""How the gate reads the claims a content plan makes possible: context (percentiles,
typical values, shares of the push, the base rate), counterfactuals, the attribution
method, the plan's coverage, the reason codes stated, and the voice (analyst and
compliance texts speak of the applicant, never to a "you").

Each reader finds one construct the texts use and returns what it claims; the gate
(:mod:`expound.rankers.gate`) compares it with the facts and the recorded plan. A claim
of one of these kinds that the readers cannot tie to a factor is unverifiable, and the
candidate fails (fail closed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts, value_text
from expound.explainers.plan import (
    MAGNITUDE_WORDS,
    SHARE_WORDS,
    attribution_method,
    share_range,
)
from expound.explainers.recourse import Counterfactual
from expound.models.manifest import SECOND_PERSON
from expound.models.wording import parenthesis_free, value_phrases
from expound.rankers.reading import (
    NUMBER,
    Spans,
    number_supported,
    parse_number,
    pattern,
    value_key,
)

PERCENTILE = re.compile(r"(?<![\w.])(\d{1,3})(?:st|nd|rd|th)\s+percentile\b")
TYPICAL = re.compile(r"\btypical(?:ly)?\b")
SHARE = re.compile(
    r"\b(?P<words>"
    + "|".join(re.escape(words) for _, _, words in SHARE_WORDS)
    + r")\s+of\s+the\s+(?:total\s+|whole\s+)?(?:push|effect|attribution)\b"
)
BASE_RATE = re.compile(
    r"(?<![\w.])(\d{1,3}(?:\.\d+)?)%\s+of\s+(?:the\s+)?(?:decisions|applications|applicants)"
    r"(?:\s+(?:were|was|are|is))?\s+(?P<side>favourable|favorable|approved|adverse|declined)"
)
MAGNITUDES = [
    (re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"), low, high)
    for words, low, high in MAGNITUDE_WORDS
]
MEAN_SCORE = re.compile(r"\b(?:mean|average)\s+score\s+(?:was|is|of)\s+(\d+(?:\.\d+)?)")
COUNTERFACTUAL = re.compile(r"\binstead of\b|\bwould have been\b|\bhad been\b")
NO_RECOURSE = re.compile(r"\bno (?:single )?change\b[^.]*\bwould\b")
METHOD_EXACT = re.compile(
    r"\bexact\b[^.;]{0,30}\b(?:shap|attributions?|values)\b"
    r"|\b(?:shap|attributions?)\b[^.;]{0,30}\bexact(?:ly)?\b"
)
# Words that state a direction: in a clause that names a factor, one of these with no
# direction the reader understands makes the claim unverifiable.
# "The loan term raised the risk, unlike your checking account": one direction stated and
# denied of another factor in the same clause; the verifier reads no such contrast.
CONTRAST = re.compile(
    r"\b(?:unlike|in contrast|by contrast|as opposed to|contrary to|opposite|conversely)\b"
)
DIRECTION_HINTS = re.compile(
    r"\b(?:hurt\w*|harm\w*|help\w*|boost\w*|drag\w*|weigh(?:s|ed|ing)?|penali[sz]\w*"
    r"|benefit\w*|improv\w*|worsen\w*|damag\w*|hinder\w*|lift\w*|dent(?:ed|s)?"
    r"|strengthen\w*|weaken\w*|support\w*|against|favou?red|in favou?r|positiv\w*"
    r"|negativ\w*|increas\w*|decreas\w*|rais\w*|lower\w*|reduc\w*|pull\w*|drove|driv\w*"
    r"|tipp\w*|cut|cuts"
    # Free texts (instruct models) judge without a direction verb: "was a plus for you",
    # "worked in your favour", "tilted things your way"; unread, they fail closed.
    r"|plus(?:es)?|minus(?:es)?|strength\w*|weakness\w*|asset\w*|liabilit\w*|advantag\w*"
    r"|disadvantag\w*|upside|downside|good|bad|better|worse|poor\w*|problem\w*|concern\w*"
    r"|work(?:ed|s)?\s+(?:for|against)|for you|your way|tilt\w*|nudg\w*|sway\w*"
    # Judged as safe or risky in itself: "was risky", "posed no risk", "a red flag".
    r"|risky|riskier|(?:low|high|no|little)\s+risk|posed|red flag|green flag|fine|healthy"
    r"|safe|reassur\w*|confiden\w*|(?:an?\s+)?issue|opposite"
    # "Your checking account was in order": judged fine.
    r"|(?:was|were|is|are|seemed|looked)\s+(?:all\s+)?in\s+(?:good\s+)?order)\b"
)


@dataclass(frozen=True)
class Problem:
    """A claim that is false (``wrong``) or cannot be read (``unreadable``)."""

    # "context", "counterfactual", "method", "coverage", "reason", "value", "voice",
    # "unreadable"
    kind: str
    start: int
    end: int
    message: str


def share_of(facts: DecisionFacts, feature: str) -> float:
    """A factor's share of the total push (sum of |contribution| over all features)."""
    total = sum(abs(item.contribution) for item in facts.attributions.items)
    return abs(facts.factors[feature].contribution) / total if total > 0 else 0.0


def percentile_spans(clause: str) -> list[tuple[int, int]]:
    """Where a clause states a percentile (blanked before its value is checked)."""
    return [(m.start(), m.end()) for m in PERCENTILE.finditer(clause)]


def typical_cut(clause: str) -> int:
    """Where a clause's typical-value claim starts (its length when it has none)."""
    match = TYPICAL.search(clause)
    return match.start() if match else len(clause)


def context_problems(
    facts: DecisionFacts, clause: str, offset: int, features: list[str]
) -> list[Problem]:
    """Percentile, typical-value and share claims of one clause naming ``features``."""
    problems: list[Problem] = []
    plan = facts.plan
    subject = features[0] if features else None

    def fail(kind: str, match: re.Match[str], message: str) -> None:
        problems.append(Problem(kind, offset + match.start(), offset + match.end(), message))

    for match in PERCENTILE.finditer(clause):
        planned = plan.factor(subject) if plan and subject else None
        if subject is None:
            fail("unreadable", match, "a percentile with no factor named")
        elif planned is None or planned.percentile is None:
            fail("context", match, f"no percentile of {subject} was recorded")
        elif int(match.group(1)) != planned.percentile:
            fail("context", match, f"{subject} is at the {planned.percentile}th percentile")
    typical = TYPICAL.search(clause)
    if typical is not None:
        problems += _typical_problems(facts, clause, offset, subject, typical)
    for finder, low, high in MAGNITUDES:
        for match in finder.finditer(clause):
            if subject is None:
                fail("unreadable", match, f"{match.group(0)!r} with no factor named")
            elif not low <= round(share_of(facts, subject), 4) < high:
                share = share_of(facts, subject)
                fail("context", match, f"{match.group(0)!r}: {subject} was {share:.0%} of the push")
    for match in SHARE.finditer(clause):
        if subject is None:
            fail("unreadable", match, "a share of the push with no factor named")
            continue
        low, high = share_range(match.group("words"))
        share = share_of(facts, subject)
        if not low <= round(share, 4) < high:
            fail("context", match, f"{subject} was {share:.0%} of the total push")
    return problems


def _typical_problems(
    facts: DecisionFacts,
    clause: str,
    offset: int,
    subject: str | None,
    typical: re.Match[str],
) -> list[Problem]:
    where = (offset + typical.start(), offset + len(clause))
    planned = facts.plan.factor(subject) if facts.plan and subject else None
    if subject is None or planned is None or planned.typical_favourable is None:
        return [Problem("unreadable", *where, "a typical value the record does not hold")]
    expected = planned.typical_favourable
    region = clause[typical.start() :]
    spec = facts.manifest.feature(subject)
    names = sorted([spec.description, *spec.aliases], key=len, reverse=True)

    def without_names(text: str) -> str:
        # The factor's own name may hold numbers ("(1: under 20%)") or category words
        # ("co-applicant or guarantor on the loan"): left out before reading the value.
        for term in names:
            text = text.replace(term.lower(), " ")
        return text

    by_value = value_phrases(spec)
    if by_value:
        # The typical category (or banded code's label) as the texts quote it; any other
        # value named beside it is a different claim.
        quoted = {
            value_text(spec, expected).lower(),
            parenthesis_free(value_text(spec, expected)).lower(),
        }
        found = pattern(sorted(quoted)).search(region)
        if found is not None:
            rest = without_names(region[: found.start()] + " " + region[found.end() :])
            key = value_key(spec, expected)
            others = [
                p
                for value, phrases in by_value.items()
                if value != key
                for p in phrases
                if len(p) > 1 and pattern([p]).search(rest)
            ]
            if not others:
                return []
        return [Problem("context", *where, f"the typical {subject} is {expected}")]
    tokens = [m.group(0) for m in NUMBER.finditer(without_names(region))]
    # "the typical <factor> is <value>": the value is the region's last number.
    if tokens and number_supported(tokens[-1], [float(str(expected))]):
        return []
    return [Problem("context", *where, f"the typical {subject} is {expected}")]


def base_rate_problems(facts: DecisionFacts, text: str) -> list[Problem]:
    """The share of favourable decisions and the mean score of the reference sample."""
    problems = []
    reference = facts.plan.reference if facts.plan else None
    for match in BASE_RATE.finditer(text):
        side = match.group("side")
        if reference is None:
            problems.append(Problem("unreadable", match.start(), match.end(), "no base rate"))
            continue
        favourable = reference.favourable_share * 100
        expected = (
            favourable if side in ("favourable", "favorable", "approved") else 100 - favourable
        )
        if not number_supported(match.group(1) + "%", [expected]):
            problems.append(
                Problem("context", match.start(), match.end(), f"{expected:.0f}% were {side}")
            )
    for match in MEAN_SCORE.finditer(text):
        if reference is None or not number_supported(match.group(1), [reference.mean_score]):
            problems.append(
                Problem("context", match.start(), match.end(), "not the sample's mean score")
            )
    return problems


def _states(facts: DecisionFacts, sentence: str, counterfactual: Counterfactual) -> bool:
    """Whether a sentence states exactly this counterfactual: its new values and score."""
    numbers = [parse_number(m.group(0)) for m in NUMBER.finditer(sentence)]
    if not any(abs(n - counterfactual.score) <= 0.0005 + 1e-9 for n in numbers):
        return False
    for change in counterfactual.changes:
        spec = facts.manifest.feature(change.feature)
        if spec.type == "category":
            phrases = [str(change.after).replace("_", " ")]
            phrases.append(spec.category_descriptions.get(str(change.after), ""))
            phrases = [p.replace(" (", ", ").replace(")", "") for p in phrases if len(p) > 3]
            if not phrases or not pattern(phrases).search(sentence):
                return False
        elif (label := spec.value_label(change.after)) is not None:
            # A banded code is stated by its label, as the new value: "at 25 to 35%", not
            # "instead of 25 to 35%".
            if not any(
                not sentence[: m.start()].rstrip().endswith("instead of")
                for m in pattern([label]).finditer(sentence)
            ):
                return False
        elif not any(abs(n - float(str(change.after))) < 1e-6 for n in numbers):
            return False
    return True


def counterfactual_problems(
    facts: DecisionFacts, text: str, mentioned_in: dict[tuple[int, int], set[str]]
) -> tuple[list[Problem], list[Counterfactual]]:
    """Every counterfactual sentence must state a recorded, re-scored, flipping one.

    ``mentioned_in`` maps each sentence span to the features it names. Returns the
    problems and the recorded counterfactuals the text states.
    """
    recourse = facts.plan.recourse if facts.plan else None
    recorded = [c for c in (recourse.counterfactuals if recourse else []) if c.flips]
    problems, stated = [], []
    for (start, end), features in mentioned_in.items():
        sentence = text[start:end]
        if NO_RECOURSE.search(sentence):
            if recourse is None or recorded or not recourse.exhaustive:
                problems.append(
                    Problem("counterfactual", start, end, "a recorded counterfactual exists")
                )
            continue
        if not COUNTERFACTUAL.search(sentence):
            continue
        match = [
            c
            for c in recorded
            if {ch.feature for ch in c.changes} == features and _states(facts, sentence, c)
        ]
        if match:
            stated.append(match[0])
        else:
            problems.append(
                Problem("counterfactual", start, end, "not a recorded, verified counterfactual")
            )
    return problems, stated


def method_problems(facts: DecisionFacts, text: str) -> list[Problem]:
    """ "Exact" attributions only from an exact algorithm (TreeSHAP, linear SHAP)."""
    if attribution_method(facts.attributions.algorithm) == "exact":
        return []
    return [
        Problem("method", m.start(), m.end(), f"{facts.attributions.algorithm} is an estimate")
        for m in METHOD_EXACT.finditer(text)
    ]


# What may stand between a reason code and its wording: "CHK01: status ...", "CHK01 (status".
AFTER_CODE = re.compile(r"\s*[:(\-\u2013]\s*")


def reason_code_problems(facts: DecisionFacts, text: str) -> list[Problem]:
    """Every reason code the text states is a principal reason of this decision, and a
    reason's wording after a code is that code's (in either of its wordings).

    ``text`` is lowered. Codes of digits alone read as numbers and are left to the number
    checks.
    """
    entries = [e for e in facts.manifest.reasons if not e.code.isdigit()]
    if not entries:
        return []
    principal = {r.code.lower() for r in facts.reasons}
    wordings = sorted(
        ((w.lower(), e.code.lower()) for e in entries for w in {e.text, e.third_person}),
        key=lambda item: -len(item[0]),
    )
    problems = []
    for match in pattern([e.code for e in entries]).finditer(text):
        code = match.group(0)
        if code not in principal:
            problems.append(
                Problem(
                    "reason",
                    match.start(),
                    match.end(),
                    f"{code.upper()} is not a principal reason of this decision",
                )
            )
            continue
        between = AFTER_CODE.match(text, match.end())
        if between is None:
            continue
        worded = next((c for w, c in wordings if text.startswith(w, between.end())), code)
        if worded != code:
            problems.append(
                Problem(
                    "reason",
                    match.start(),
                    between.end(),
                    f"{code.upper()} is given the wording of reason {worded.upper()}",
                )
            )
    return problems


def coverage_problems(facts: DecisionFacts, text: str, mentioned: list[str]) -> list[Problem]:
    """An analyst or compliance text must name every factor of its plan (a reason's code
    or text names the reason's features)."""
    if facts.plan is None or facts.audience.value == "APPLICANT":
        return []
    covered = set(mentioned)
    for reason in facts.reasons:
        wordings = [reason.code, *facts.reason_wordings(reason)]
        if any(wording.lower() in text for wording in wordings):
            covered |= set(reason.features)
    return [
        Problem("coverage", 0, len(text), f"the plan's factor {p.feature} is not named")
        for p in facts.plan.factors
        if p.feature not in covered
    ]


def voice_problems(facts: DecisionFacts, text: str, quoted: Spans) -> list[Problem]:
    """An analyst's or compliance officer's text speaks of the applicant in the third
    person: every "you", "your", "yours", "yourself" (any case, whole words) in it is
    wrong, however true the claim around it ("your loan term raised the risk").

    A reason stated in the applicant's wording ("your checking account") is the same
    reason, but spoken to the wrong reader: the third-person wording exists for these
    texts. Only ``quoted`` spans are exempt: the manifest's own words for a feature or a
    value, which a text must quote to state them.
    """
    if facts.audience is Audience.APPLICANT:
        return []
    reader = "an analyst" if facts.audience is Audience.ANALYST else "a compliance officer"
    return [
        Problem(
            "voice",
            m.start(),
            m.end(),
            f"{m.group(0)!r} addresses the reader: a text for {reader} speaks of the "
            "applicant in the third person",
        )
        for m in SECOND_PERSON.finditer(text)
        if not quoted.hold(m.start(), m.end())
    ]
