"""How the verifier reads text: word lists, patterns, mentions, clauses and directions.

Everything here is about finding claims in a candidate; :mod:`expound.rankers.gate`
checks them against the facts. The word lists are data (rankers/lexicon.json).
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from expound.explainers.facts import DecisionFacts
from expound.models.manifest import FeatureSpec
from expound.models.wording import MIN_PHRASE_CHARS

NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|(?<![\w.])[-+]?\d+(?:\.\d+)?%?")
PARTICLE_DIRECTION = re.compile(
    r"\b(?:push|pushed|pushes|bring|brought|brings|drove|drives|driven|sent|sends|moved|moves"
    r"|pulled|pulls|took|takes|nudged|nudges|tipped|tips)\s+(?:the\s+|your\s+|its\s+)?"
    r"(?:estimated\s+|predicted\s+|modelled\s+|modeled\s+|model\s+|model's\s+|overall\s+)?"
    r"(?P<object>risk|score|risk score|likelihood of default|probability of default"
    r"|chances?(?: of approval)?|odds of approval|approval odds)"
    r"\s+(?P<particle>up|down|higher|lower)\b"
)
# "added 0.424 to the risk": the amount between verb and object ("added to" is in the
# word lists; with a number inside it was read as no direction at all).
ADDED_AMOUNT = re.compile(
    r"\b(?:added|adds|took|takes)\s+[-+]?\d[\d,]*(?:\.\d+)?%?\s+"
    r"(?P<preposition>to|off|from)\s+(?:the\s+|your\s+)?(?:estimated\s+|predicted\s+)?"
    r"(?P<object>risk|score|risk score|likelihood of default|probability of default"
    r"|chances?(?: of approval)?|odds of approval|approval odds)\b"
)
# The model's own score named bare ("raised your score"): the risk or the approval as
# the manifest says (:func:`score_sense`).
SCORE_OBJECTS = [
    "score",
    "scores",
    "model score",
    "model's score",
    "estimated score",
    "predicted score",
    "overall score",
    "final score",
    "application score",
]
# "raised the chances of approval": the object read past its determiner ("your", "the").
DETERMINER = re.compile(r"^(?:(?:the applicant's|applicant's|the|your|its|their|his|her)\s+)+")
# Arrows an instruct model writes for a direction: up and down ones, and right ones
# ("->") that lead to a stated change. Read only with the risk or the approval as their
# object ("checking account ↓ risk", "loan term -> higher risk", "risk ↑"); a bare "loan
# term ↑" may mean a long term or a raised risk, and fails closed (:func:`unread_arrows`).
UP_ARROWS = "\u2191\u21d1\u2197\u21e7\u2934\u2b06\U0001f4c8"
DOWN_ARROWS = "\u2193\u21d3\u2198\u21e9\u2935\u2b07\U0001f4c9"
ARROW = re.compile(
    r"[\u2190-\u21ff\u27f0-\u27ff\u2900-\u297f\u2b00-\u2bff\u2794-\u27bf\U0001f4c8\U0001f4c9]"
    r"|-+>|=+>"
)
_ARROW_OBJECT = (
    r"(?:risk score|risk|score|likelihood of default|probability of default"
    r"|chances?(?: of approval)?|odds of approval|approval odds)"
)
ARROW_DIRECTION = re.compile(
    rf"(?P<arrow>[{UP_ARROWS}{DOWN_ARROWS}])\s*(?:the\s+|your\s+|its\s+)?"
    rf"(?:estimated\s+|predicted\s+)?(?P<object>{_ARROW_OBJECT})\b"
    rf"|(?:(?:[\u2192\u27f6\u21d2\u2794\u279c\u279e]|-+>|=+>)\s*)?"
    rf"\b(?P<subject>{_ARROW_OBJECT})\s*(?P<after>[{UP_ARROWS}{DOWN_ARROWS}])"
    rf"|(?:[\u2192\u27f6\u21d2\u2794\u279c\u279e]|-+>|=+>)\s*(?:an?\s+|the\s+|your\s+)?"
    r"(?P<change>higher|lower|increased|reduced|decreased|greater|smaller|more|less)\s+"
    rf"(?:estimated\s+|predicted\s+)?(?P<changed>{_ARROW_OBJECT})\b"
)
# The risk or the approval as the subject of its own change: "your risk went down because
# of ...", "made your chances rise", "caused your score to drop", "loan term: risk up".
_CHANGED_OBJECT = rf"(?:{_ARROW_OBJECT}|probability of approval|credit rating|creditworthiness)"
CHANGE_OF_OBJECT = re.compile(
    rf"\b(?P<subject>{_CHANGED_OBJECT})\s+(?:to\s+|has\s+|have\s+|had\s+)?"
    r"(?:(?:(?:went|go|goes|gone|going)\s+)?(?P<updown>up|down)"
    r"|(?P<up>rose|rise|rises|risen|rising|climbed|climb|climbs|jumped|jump|jumps|grew|grow"
    r"|grows|grown|went higher|go higher)"
    r"|(?P<down>fell|fall|falls|fallen|falling|dropped|drop|drops|declined|decline|declines"
    r"|sank|sink|sinks|went lower|go lower))\b"
)
# "Your chances increased": an up or down verb right after its object is intransitive.
_SUBJECT_BEFORE = re.compile(rf"\b(?P<subject>{_CHANGED_OBJECT})\s+(?:has\s+|have\s+)?$")
LIST_MARKER = re.compile(r"(?:^|[\s:;])(\d)[.)]\s")
# "Your chances were raised by the loan term": a passive verb's object is its subject.
PASSIVE = re.compile(r"\b(?:was|were|is|are|been|being)\s+(?:\w+ly\s+)?$")
# Look-alikes an instruct model writes, each for the one ASCII character it stands for (one
# for one: spans into the text stay valid): "checking\u00a0account", "didn\u2019t".
LOOKALIKES = str.maketrans(
    {
        "\u00a0": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u2018": "'",
        "\u2019": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2013": "-",
        "\u2014": "-",
        # The emoji form of an arrow ("⬆️"): the arrow, then a variation selector.
        "\ufe0f": " ",
    }
)
# "however" beside a comma does not end the clause: set off by commas it is parenthetical
# and may sit between a factor and its verb ("your checking account, however, lowered it"),
# and after one ("..., however the savings ...") it joins two factors in one clause, where
# each is held to its own direction (`gate._direction_of`).
CLAUSE_BREAK = re.compile(
    r"[.;!?]\s+|[.;!?]$|\b(?:but|while|whereas|although)\b|(?<!,\s)\bhowever\b(?!\s*,)|\n"
)


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


def pattern(terms: list[str]) -> re.Pattern[str]:
    """A word-boundary regex matching any of ``terms`` (longest first); cached."""
    if not terms:
        raise ValueError("no terms to match")
    return _compiled(tuple(t.lower() for t in terms if t))


@dataclass(frozen=True)
class Mention:
    feature: str
    start: int
    end: int


def feature_terms(facts: DecisionFacts) -> dict[str, str]:
    terms: dict[str, str] = {}
    for spec in facts.manifest.features:
        for term in [spec.name.replace("_", " "), spec.description, *spec.aliases]:
            terms.setdefault(term.lower(), spec.name)
    return terms


def find_mentions(text: str, terms: dict[str, str]) -> list[Mention]:
    """The feature mentions of ``text``, in order; matches never overlap (one scan)."""
    return [
        Mention(terms[match.group(0)], match.start(), match.end())
        for match in pattern(list(terms)).finditer(text)
    ]


class Spans:
    """Spans of a text, asked "does one of you hold [start, end)?" in logarithmic time.

    The verifier asks this once per mention or match; a list scan per question made it
    quadratic in the length of the candidate.
    """

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self._starts = [s for s, _ in ordered]
        # The furthest end among the spans starting at or before each one.
        self._reach = list(itertools.accumulate((e for _, e in ordered), max))

    def hold(self, start: int, end: int) -> bool:
        """True when some span starts at or before ``start`` and ends at or after ``end``."""
        last = bisect.bisect_right(self._starts, start) - 1
        return last >= 0 and self._reach[last] >= end


def clauses(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in CLAUSE_BREAK.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def negated(text: str, position: int) -> bool:
    window = text[max(0, position - 20) : position]
    return bool(pattern(lexicon()["negations"]).search(window))


def stated_direction(clause: str) -> tuple[bool, int] | None:
    """(raises risk?, position) of the first direction the clause states, if any."""
    found = stated_directions(clause)
    return found[0] if found else None


def stated_directions(clause: str, score_is_approval: bool = False) -> list[tuple[bool, int]]:
    """(raises risk?, position) of every direction the clause states, in order: a clause
    can join two factors each with its own ("the loan term raised the risk, and the
    savings lowered it").

    Args:
        score_is_approval: whether a bare "score" ("raised your score") is the approval
            side, as the model's own score may be (:func:`score_sense`); else the risk.
    """
    words = lexicon()
    found: list[tuple[int, bool]] = []
    for match in pattern(words["adverse_verbs"]).finditer(clause):
        found.append((match.start(), True))
    for match in pattern(words["favourable_verbs"]).finditer(clause):
        found.append((match.start(), False))
    approval = pattern(words["approval_objects"] + (SCORE_OBJECTS if score_is_approval else []))
    for verbs, up in ((words["up_verbs"], True), (words["down_verbs"], False)):
        for match in pattern(verbs).finditer(clause):
            after = clause[match.end() : match.end() + 40]
            object_is_approval = bool(approval.match(DETERMINER.sub("", after.strip())))
            before = clause[max(0, match.start() - 40) : match.start()]
            if PASSIVE.search(before):
                object_is_approval = _approval_subject(before, score_is_approval)
            elif (subject := _SUBJECT_BEFORE.search(before)) is not None:
                object_is_approval = bool(approval.fullmatch(subject.group("subject")))
            found.append((match.start(), up != object_is_approval))
    # Verb, object, particle: "pushed the estimated risk up", "brought your chances down".
    for match in PARTICLE_DIRECTION.finditer(clause):
        up = match.group("particle") in ("up", "higher")
        found.append((match.start(), up != bool(approval.match(match.group("object")))))
    for match in ADDED_AMOUNT.finditer(clause):
        up = match.group("preposition") == "to"
        found.append((match.start(), up != bool(approval.match(match.group("object")))))
    for match in CHANGE_OF_OBJECT.finditer(clause):
        up = match.group("up") is not None or match.group("updown") == "up"
        found.append((match.start(), up != bool(approval.fullmatch(match.group("subject")))))
    # Arrows with their object: "↓ risk", "risk ↑", "-> higher risk".
    for match in ARROW_DIRECTION.finditer(clause):
        if match.group("arrow") is not None:
            up, target = match.group("arrow") in UP_ARROWS, match.group("object")
        elif match.group("after") is not None:
            up, target = match.group("after") in UP_ARROWS, match.group("subject")
        else:
            up = match.group("change") in ("higher", "increased", "greater", "more")
            target = match.group("changed")
        found.append((match.start(), up != bool(approval.fullmatch(target))))
    return [(raises != negated(clause, position), position) for position, raises in sorted(found)]


def unread_arrows(clause: str) -> list[tuple[int, int]]:
    """The arrows of a clause that no reading of :data:`ARROW_DIRECTION` takes as a
    direction ("loan term ↑": a long term, or a raised risk?): the gate fails them closed."""
    read = [(m.start(), m.end()) for m in ARROW_DIRECTION.finditer(clause)]
    return [
        (m.start(), m.end())
        for m in ARROW.finditer(clause)
        if not any(start <= m.start() and m.end() <= end for start, end in read)
    ]


def score_sense(facts: DecisionFacts) -> bool | None:
    """What a bare "score" in a text means for this model: True when a higher score is the
    approval side, False when it is the risk, None when the manifest does not say.

    A credit score going up is good, a risk score going up is bad; "raised your score" is
    read only when the manifest's ``score_meaning`` names one side in words
    (lexicon ``score_meanings``) and its decision rule agrees (a higher risk score is
    adverse at or above the threshold, a higher approval score below it).
    """
    return _score_sense(facts.manifest.score_meaning, facts.manifest.decision.adverse_when)


@cache
def _score_sense(score_meaning: str, adverse_when: str) -> bool | None:
    words = lexicon()["score_meanings"]
    meaning = score_meaning.lower()
    sides = set()
    for approval, key in ((False, "risk"), (True, "approval")):
        for match in pattern(words[key]).finditer(meaning):
            # "the probability that the applicant does not default" is the approval side.
            sides.add(approval != negated(meaning, match.start()))
    if len(sides) != 1:
        return None
    (approval,) = sides
    adverse_above = adverse_when == "score_at_or_above"
    return approval if approval != adverse_above else None


def _approval_subject(before: str, score_is_approval: bool = False) -> bool:
    """Whether the subject before a passive verb ("your chances were raised") is the
    approval, not the risk (the nearer of the two words read)."""
    words = lexicon()
    score = SCORE_OBJECTS if score_is_approval else []
    ends = {
        approval: max((m.end() for m in pattern(terms).finditer(before)), default=-1)
        for approval, terms in (
            (True, words["approval_objects"] + score),
            (False, [t for t in words["risk_objects"] if t not in score]),
        )
    }
    return ends[True] > ends[False]


def phrase_spans(phrases: set[str], text: str) -> list[tuple[int, int]]:
    kept = sorted({p.lower().rstrip(")") for p in phrases if len(p) >= MIN_PHRASE_CHARS})
    return [(m.start(), m.end()) for m in pattern(kept).finditer(text)] if kept else []


def parse_number(token: str) -> float:
    return float(token.replace(",", "").rstrip("%"))


def number_supported(token: str, allowed: list[float]) -> bool:
    value = parse_number(token)
    digits = token.rstrip("%").split(".")
    decimals = len(digits[1]) if len(digits) == 2 else 0
    tolerance = max(0.5 * 10**-decimals, 0.005 * abs(value))
    return any(abs(abs(value) - abs(a)) <= tolerance + 1e-9 for a in allowed)


def masked(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with feature names and quoted values blanked out, so that "supports" in
    "number of people the applicant supports" is not read as a verb of the sentence."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "x" * (end - start)
    return "".join(chars)


def value_key(spec: FeatureSpec, value: object) -> str | None:
    """The key of ``value`` in :func:`~expound.models.wording.value_phrases` (None: a value
    with no name)."""
    if spec.type == "category":
        return None if value is None else str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else None
    return None


def blank_phrases(text: str, phrases: list[str]) -> str:
    """``text`` with every occurrence of ``phrases`` blanked (same length)."""
    kept = [p for p in phrases if p]
    if not kept:
        return text
    return pattern(kept).sub(lambda m: " " * len(m.group(0)), text)
