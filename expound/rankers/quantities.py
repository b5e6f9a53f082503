"""How the gate reads quantities: the claims about a value or a share that a number or a
size word makes, beyond the manifest's own value phrases.

- A number with a unit ("48 months", "a four-year loan", "forty-eight months", "48 DM")
  states a value: bound to the factor named next to it (:func:`binding.closest`), it must
  be that factor's value in that unit (months and years convert); a quantity bound to a
  factor whose values are categories ("your savings of 48 DM") or in a unit the factor is
  not in cannot be read, and in a clause naming no factor it must be a value the decision
  holds (a bound, "over 24 months", there cannot be read). Quantities inside any
  feature's value phrase ("less than 100 DM") are read as those phrases already.
- A percentage in a clause naming a factor states its share of the decision ("accounted
  for 48% of the decision": the share of the push recorded for it), or the probability or
  the threshold where the clause names them; any other is unreadable.
- The score and the threshold stated by name ("a threshold of 0.938") are the decision's.
- A size word about a factor's value ("the loan term was short", "your low savings") is
  checked against the factor's recorded percentile in the reference sample; without one it
  cannot be read.

Each reader returns :class:`~expound.rankers.claims.Problem` records; the gate turns them
into violations.
"""

from __future__ import annotations

import re
from functools import cache

from expound.explainers.facts import IRREGULAR_SINGULARS, DecisionFacts
from expound.explainers.plan import SHARE_WORDS
from expound.models.wording import value_phrases
from expound.rankers import binding, claims
from expound.rankers.claims import Problem
from expound.rankers.reading import (
    Mention,
    Spans,
    lexicon,
    number_supported,
    parse_number,
    pattern,
)

# Months per unit of time: a loan term of "four years" is 48 months.
TIME_UNITS = {
    "month": 1,
    "months": 1,
    "year": 12,
    "years": 12,
    "week": 12 / 52,
    "weeks": 12 / 52,
    "day": 12 / 365,
    "days": 12 / 365,
}
# "nine thousand DM", "4.3 thousand DM".
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
# "two and a half years", "a year and a half", "two-and-a-quarter years".
FRACTIONS = {"half": 0.5, "quarter": 0.25}
_DIGITS = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d+(?:\.\d+)?"
# "accounted for 48% of the decision", "made up 30 percent of the score": a share claim.
SHARE_OF = re.compile(
    r"\s*\b(?:of|in)\s+(?:the\s+|your\s+|this\s+)?(?:model's\s+|overall\s+|total\s+|whole\s+)?"
    r"(?:decision|outcome|result|score|push|effect|attribution|explanation|prediction"
    r"|weight|influence|impact|total|risk score|risk)\b"
)
SHARE_VERB = re.compile(
    r"\b(?:accounted\s+for|accounts\s+for|made\s+up|makes\s+up|contributed|contributes"
    r"|represented|represents|was\s+responsible\s+for|were\s+responsible\s+for|explained"
    r"|explains|drove|carried|share\s+of|weight\s+of)\s+(?:about\s+|around\s+|roughly\s+"
    r"|approximately\s+|nearly\s+|almost\s+|some\s+|over\s+|under\s+|close\s+to\s+)?$"
)
# A quantity stated as a bound: "over four years", "less than 12 months", "100 DM or more".
BOUND_BEFORE = re.compile(
    r"\b(?:(?P<above>more than|over|above|at least|no less than|longer than|greater than"
    r"|in excess of)|less than|fewer than|under|below|at most|up to|no more than"
    r"|shorter than|within)\s+(?:about\s+|around\s+|roughly\s+)?$"
)
BOUND_AFTER = re.compile(
    r"^\s+or\s+(?:(?P<above>more|longer|above|over|greater)|less|fewer|shorter|below|under)\b"
)
# "48%", "48 percent", "48 per cent".
PERCENT = re.compile(rf"(?<![\w.,])(?P<number>{_DIGITS})(?:%|\s*(?:percent|per\s+cent)\b)")
# Where a clause speaks of the probability or the threshold, a percentage may be theirs.
DECISION_WORDS = re.compile(
    r"\b(?:probability|chances?|likelihood|odds|threshold|cut-?off|score|risk of default"
    r"|default risk)\b"
)
# The score and the threshold stated by name: "a score of 0.938", "threshold 0.50",
# "the 0.50 threshold". A mean or average score is the reference sample's (claims.MEAN_SCORE).
THRESHOLD = re.compile(
    rf"\b(?:threshold|cut-?off)\s+(?:of\s+|was\s+|is\s+|at\s+|stood\s+at\s+|[:=]\s*)?"
    rf"(?P<a>{_DIGITS})(?P<pa>%?)"
    rf"|(?<![\w.])(?P<b>{_DIGITS})(?P<pb>%?)\s+(?:threshold|cut-?off)\b"
)
SCORE = re.compile(
    rf"(?<!mean )(?<!average )\b(?:score|probability of default|default probability"
    rf"|likelihood of default|chance of default)\s+(?:of\s+|was\s+|is\s+|at\s+|stood\s+at\s+"
    rf"|[:=]\s*)?(?P<a>{_DIGITS})(?P<pa>%?)"
)


@cache
def _number_words() -> dict[str, int]:
    words: dict[str, int] = lexicon()["number_words"]
    return words


@cache
def _quantity(units: tuple[str, ...]) -> re.Pattern[str]:
    named = sorted(_number_words(), key=len, reverse=True)
    tens = [w for w in named if _number_words()[w] in range(20, 100, 10)]
    ones = [w for w in named if _number_words()[w] in range(1, 10)]
    compound = rf"(?:{'|'.join(tens)})[- ](?:{'|'.join(ones)})"
    # "a" counts one only before "<unit> and a half": "a year" alone is no quantity read.
    number = rf"{_DIGITS}|{compound}|{'|'.join(named)}|an?(?=\s+\w+\s+and\s+an?\s+half\b)"
    ordered = sorted(units, key=len, reverse=True)
    scale = "|".join(SCALES)
    fraction = "|".join(FRACTIONS)
    return re.compile(
        rf"(?<![\w.,])(?P<number>{number})(?:[- ](?P<scale>{scale}))?"
        rf"(?:[- ]and[- ]an?[- ](?P<fraction>{fraction}))?(?:\s+|-)"
        rf"(?P<unit>{'|'.join(map(re.escape, ordered))})(?!\w)"
        rf"(?:\s+and\s+an?\s+(?P<trailing>{fraction})\b)?"
    )


def _amount(match: re.Match[str]) -> float:
    """The number a quantity states, in its own unit: "two and a half years" is 2.5."""
    token = match.group("number")
    number = 1.0 if token in ("a", "an") else _value(token)
    number *= SCALES.get(match.group("scale") or "", 1)
    return number + sum(FRACTIONS.get(match.group(g) or "", 0.0) for g in ("fraction", "trailing"))


def _value(token: str) -> float:
    words = _number_words()
    if token in words:
        return float(words[token])
    parts = re.split(r"[- ]", token)
    if all(p in words for p in parts):
        return float(sum(words[p] for p in parts))
    return parse_number(token)


def _forms(unit: str) -> set[str]:
    """A unit as texts write it: "months", "month"; "people", "person"."""
    unit = unit.lower()
    singular = IRREGULAR_SINGULARS.get(unit, unit[:-1] if unit.endswith("s") else unit)
    return {unit, singular}


def _in_unit(number: float, stated: str, unit: str) -> float | None:
    """``number`` ``stated`` converted to ``unit`` (None: not a unit of that kind)."""
    if stated in _forms(unit):
        return number
    if stated in TIME_UNITS and unit.lower() in TIME_UNITS:
        return number * TIME_UNITS[stated] / TIME_UNITS[unit.lower()]
    return None


def _units(facts: DecisionFacts) -> list[str]:
    units = set(TIME_UNITS)
    for spec in facts.manifest.features:
        if spec.unit and spec.unit != "band":
            units |= _forms(spec.unit)
    return sorted(units)


def value_phrase_spans(facts: DecisionFacts, text: str) -> list[tuple[int, int]]:
    """Where ``text`` (lowered) names any value of any feature in the manifest's words:
    quantities inside them ("less than 100 DM", "between one and four years") are read as
    those phrases are, not here."""
    phrases = {
        phrase.lower()
        for spec in facts.manifest.features
        for listed in value_phrases(spec).values()
        for phrase in listed
    }
    phrases |= {f.value_text.lower() for f in facts.factors.values()}
    kept = sorted(p for p in phrases if p)
    return [(m.start(), m.end()) for m in pattern(kept).finditer(text)] if kept else []


def quantity_problems(
    facts: DecisionFacts,
    clause: str,
    offset: int,
    mentions: list[Mention],
    skip: Spans,
) -> list[Problem]:
    """The quantities of one factual clause (``clause`` lowered, at ``offset`` of the text;
    ``mentions`` the factors it names, spans in the text; ``skip``: spans of the text read
    elsewhere: names, reasons, quoted values, value phrases)."""
    problems = []
    for match in _quantity(tuple(_units(facts))).finditer(clause):
        start, end = offset + match.start(), offset + match.end()
        if skip.hold(start, end) or skip.hold(start, start + 1):
            continue
        number, unit = _amount(match), match.group("unit")
        said = f"{match.group(0)!r}"
        side = _bound(clause, match)
        bound = binding.closest(mentions, start, end)
        if bound is None:
            if side is not None:
                # "It was over 24 months": a bound holds of many values, and of no one
                # factor named; it passed unread.
                problems.append(
                    Problem("unreadable", start, end, f"{said} is a bound of no factor named")
                )
            elif not _held(facts, number, unit):
                problems.append(
                    Problem("number", start, end, f"{said} is no value of this decision")
                )
            continue
        spec = facts.manifest.feature(bound.feature)
        factor = facts.factors[bound.feature]
        converted = _in_unit(number, unit, spec.unit) if spec.unit else None
        if factor.number is None or spec.value_labels or converted is None:
            own_side = _own_bound(factor.value_text, match.group(0))
            if side is not None and own_side is not None:
                # The bound of the actual category ("less than 100 DM"): stated its way
                # ("savings under 100 DM"), or the other way denied ("not having savings of
                # 100 DM or more"); the other way asserted is a wrong value.
                if (side == own_side) == _denied(clause, match.start()):
                    problems.append(
                        Problem(
                            "value", start, end, f"{said}: {bound.feature} is {factor.value_text!r}"
                        )
                    )
                continue
            problems.append(
                Problem(
                    "unreadable",
                    start,
                    end,
                    f"{said} is no value of {bound.feature} the record holds "
                    f"({factor.value_text!r})",
                )
            )
            continue
        tolerance = max(0.5, 0.005 * abs(converted))
        if side is None:
            wrong = not number_supported(f"{converted:g}", [factor.number])
        elif side == "above":
            wrong = factor.number < converted - tolerance
        else:
            wrong = factor.number > converted + tolerance
        if wrong:
            problems.append(
                Problem("value", start, end, f"{said}: {bound.feature} is {factor.value_text!r}")
            )
    return problems


def _bound(clause: str, match: re.Match[str]) -> str | None:
    """ "above" or "below" when the quantity is stated as a bound ("over four years", "100
    DM or more"), None when as the value itself."""
    for finder, at in (
        (BOUND_BEFORE, clause[: match.start()]),
        (BOUND_AFTER, clause[match.end() :]),
    ):
        found = finder.search(at)
        if found is not None:
            return "above" if found.group("above") else "below"
    return None


def _own_bound(value_text: str, quantity: str) -> str | None:
    """The side ("above", "below") of ``quantity`` as a bound in the factor's actual value
    phrase ("100 DM" of "less than 100 DM": below); None when the phrase holds no such
    bound."""
    text = value_text.lower()
    found = re.search(rf"(?<![\w.,]){re.escape(quantity)}(?!\w)", text)
    return _bound(text, found) if found is not None else None


def _denied(clause: str, position: int) -> bool:
    """Whether a negation stands before ``position`` in the clause ("not having savings of
    100 DM or more")."""
    return pattern(lexicon()["negations"]).search(clause, 0, position) is not None


def quantity_spans(facts: DecisionFacts, text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` holding a quantity with a unit or a percentage (read here)."""
    spans = [(m.start(), m.end()) for m in _quantity(tuple(_units(facts))).finditer(text)]
    return spans + [(m.start(), m.end()) for m in PERCENT.finditer(text)]


def other_quantity_spans(facts: DecisionFacts, clause: str, feature: str) -> list[tuple[int, int]]:
    """Spans of ``clause`` holding a quantity in a unit other than ``feature``'s ("4 years"
    of a term in months) or a percentage in words ("30 percent"): read here (converted, or
    as a share), not as bare numbers stating the factor's value."""
    unit = facts.manifest.feature(feature).unit
    own = _forms(unit) if unit else set()
    spans = [
        (m.start(), m.end())
        for m in _quantity(tuple(_units(facts))).finditer(clause)
        if m.group("unit") not in own
    ]
    return spans + [(m.start(), m.end()) for m in PERCENT.finditer(clause)]


def _held(facts: DecisionFacts, number: float, unit: str) -> bool:
    """Whether some numeric factor's value is ``number`` ``unit``."""
    for factor in facts.factors.values():
        spec = facts.manifest.feature(factor.feature)
        if factor.number is None or not spec.unit or spec.value_labels:
            continue
        converted = _in_unit(number, unit, spec.unit)
        if converted is not None and number_supported(f"{converted:g}", [factor.number]):
            return True
    return False


def percent_problems(
    facts: DecisionFacts, numbers: str, offset: int, subject: str, skip: Spans
) -> list[Problem]:
    """The percentages of one factual clause naming ``subject`` first.

    ``numbers`` is the clause (lowered, at ``offset`` of the text) with names and quoted
    values blanked (same length); ``skip``: spans of the text read elsewhere (value phrases,
    labels). A percentage left states the factor's share of the decision, or the
    probability or the threshold where the clause speaks of them; any other cannot be read.
    """
    problems = []
    decision = [facts.prediction.score * 100, facts.prediction.threshold * 100]
    decision.append(100 - decision[0])
    speaks_of_decision = DECISION_WORDS.search(numbers) is not None
    share = claims.share_of(facts, subject) * 100
    for match in PERCENT.finditer(numbers):
        start, end = offset + match.start(), offset + match.end()
        if skip.hold(start, end):
            continue
        token = match.group("number") + "%"
        if _as_share(numbers, match):
            if not number_supported(token, [share]):
                problems.append(
                    Problem(
                        "context",
                        start,
                        end,
                        f"{match.group(0)}: {subject} was {share:.0f}% of the total push",
                    )
                )
        elif not (speaks_of_decision and number_supported(token, decision)):
            problems.append(
                Problem(
                    "unreadable",
                    start,
                    end,
                    f"{match.group(0)} is neither the share of {subject} nor a number of the "
                    "decision",
                )
            )
    return problems


# A share of the decision in words ("nearly half of the decision", "most of the score"):
# fractions with a value, and ranges (the plan's share words, "most", "nearly all"). A share
# of the push, effect or attribution is claims.SHARE's, read with the plan's ranges.
FRACTIONS = {
    "half": 1 / 2,
    "a half": 1 / 2,
    "one half": 1 / 2,
    "a third": 1 / 3,
    "one third": 1 / 3,
    "one-third": 1 / 3,
    "two thirds": 2 / 3,
    "two-thirds": 2 / 3,
    "a quarter": 1 / 4,
    "one quarter": 1 / 4,
    "three quarters": 3 / 4,
    "three-quarters": 3 / 4,
    "a fifth": 1 / 5,
    "one fifth": 1 / 5,
    "a tenth": 1 / 10,
}
SHARE_RANGES = {
    **{words: (low, high) for low, high, words in SHARE_WORDS},
    "most": (0.5, 1.01),
    "the majority": (0.5, 1.01),
    "a majority": (0.5, 1.01),
    "the bulk": (0.5, 1.01),
    "the lion's share": (0.5, 1.01),
    "almost all": (0.8, 1.01),
}
HEDGES = {
    "about": "near",
    "around": "near",
    "roughly": "near",
    "approximately": "near",
    "some": "near",
    "nearly": "near",
    "almost": "near",
    "close to": "near",
    "over": "above",
    "more than": "above",
    "just over": "above",
    "well over": "above",
    "under": "below",
    "less than": "below",
    "just under": "below",
    "well under": "below",
}
_WHOLE = (
    r"(?:the\s+|your\s+|this\s+)?(?:model's\s+|overall\s+|total\s+|whole\s+|final\s+)?"
    r"(?:decision|outcome|result|score|prediction|weight|influence|impact|explanation"
    r"|risk score)\b"
)
FRACTION_SHARE = re.compile(
    r"\b(?:(?P<hedge>"
    + "|".join(re.escape(h) for h in sorted(HEDGES, key=len, reverse=True))
    + r")\s+)?(?P<words>"
    + "|".join(re.escape(w) for w in sorted([*FRACTIONS, *SHARE_RANGES], key=len, reverse=True))
    + rf")\s+(?:of\s+)?{_WHOLE}"
)


def fraction_problems(
    facts: DecisionFacts, numbers: str, offset: int, subject: str | None
) -> list[Problem]:
    """Shares of the decision in words, of ``subject`` (the clause's first factor; None
    when it names none: unreadable, as share words with no factor are)."""
    problems = []
    for match in FRACTION_SHARE.finditer(numbers):
        where = (offset + match.start(), offset + match.end())
        if subject is None:
            problems.append(
                Problem("unreadable", *where, f"{match.group(0)!r}: a share of no factor")
            )
            continue
        share = claims.share_of(facts, subject)
        if not _share_agrees(share, match.group("words"), HEDGES.get(match.group("hedge") or "")):
            problems.append(
                Problem(
                    "context", *where, f"{match.group(0)!r}: {subject} was {share:.0%} of the push"
                )
            )
    return problems


def _share_agrees(share: float, words: str, hedge: str | None) -> bool:
    if words in SHARE_RANGES:
        low, high = SHARE_RANGES[words]
        return low <= round(share, 4) < high
    fraction = FRACTIONS[words]
    if hedge == "above":
        return share >= fraction - 0.02
    if hedge == "below":
        return share <= fraction + 0.02
    return abs(share - fraction) <= (0.07 if hedge == "near" else 0.04)


def unowned_share_problems(numbers: str, offset: int, skip: Spans) -> list[Problem]:
    """A percentage stated as a share of the decision in a clause naming no factor ("it
    accounted for 94% of the decision") is tied to no factor: unreadable, as share words
    with no factor named are (:func:`claims.context_problems`)."""
    return [
        Problem(
            "unreadable",
            offset + m.start(),
            offset + m.end(),
            f"{m.group(0)}: a share of no factor",
        )
        for m in PERCENT.finditer(numbers)
        if not skip.hold(offset + m.start(), offset + m.end()) and _as_share(numbers, m)
    ]


def _as_share(numbers: str, match: re.Match[str]) -> bool:
    return (
        SHARE_OF.match(numbers, match.end()) is not None
        or SHARE_VERB.search(numbers, 0, match.start()) is not None
    )


def decision_number_problems(facts: DecisionFacts, text: str) -> list[Problem]:
    """The score and the threshold stated by name must be the decision's."""
    problems = []
    for finder, expected, what in (
        (THRESHOLD, facts.prediction.threshold, "the threshold"),
        (SCORE, facts.prediction.score, "the score"),
    ):
        for match in finder.finditer(text):
            token = match.group("a") or match.group("b")
            percent = (match.groupdict().get("pa") or match.groupdict().get("pb")) == "%"
            if not number_supported(token, [expected * 100 if percent else expected]):
                problems.append(
                    Problem(
                        "number",
                        match.start(),
                        match.end(),
                        f"{match.group(0)!r}: {what} was {expected:.3f}",
                    )
                )
    return problems


@cache
def _size_patterns() -> tuple[re.Pattern[str], re.Pattern[str], frozenset[str]]:
    """(a size word just before a name, one after it as its complement, the "big" words)."""
    words = lexicon()["size_words"]
    big, small = words["big"], words["small"]
    sized = "|".join(re.escape(w) for w in sorted([*big, *small], key=len, reverse=True))
    degree = r"(?:(?:very|quite|rather|relatively|fairly|too|comparatively|unusually|so)\s+)?"
    # "was low risk", "a high-risk loan term" judge the risk, not the value.
    word = rf"(?P<word>{sized})(?![\s-]+risk)"
    before = re.compile(rf"\b{word}\s+$")
    after = re.compile(
        rf"(?:\s*\([^)]*\))?,?\s+(?:was|were|is|are|seemed|looked|being|been)\s+{degree}"
        rf"{word}\b"
    )
    return before, after, frozenset(big)


def size_problems(
    facts: DecisionFacts, clause: str, offset: int, mentions: list[Mention], skip: Spans
) -> list[Problem]:
    """Size words said of a factor's value: before its name ("a short loan term") or after
    it ("the loan term was long"), judged by its percentile in the reference sample."""
    before, after, big = _size_patterns()
    problems = []
    for mention in mentions:
        start, end = mention.start - offset, mention.end - offset
        for found in (
            before.search(clause, 0, start),
            after.match(clause, end),
        ):
            if found is None or skip.hold(offset + found.start("word"), offset + found.end("word")):
                continue
            word = found.group("word")
            problem = _size_problem(facts, mention.feature, word, word in big)
            if problem is not None:
                kind, message = problem
                problems.append(
                    Problem(kind, offset + found.start("word"), offset + found.end("word"), message)
                )
    return problems


def _size_problem(
    facts: DecisionFacts, feature: str, word: str, big: bool
) -> tuple[str, str] | None:
    planned = facts.plan.factor(feature) if facts.plan is not None else None
    percentile = planned.percentile if planned is not None else None
    if percentile is None:
        return "unreadable", f"{word!r}: no percentile of {feature} is recorded to judge it by"
    if (percentile >= 67 and big) or (percentile <= 33 and not big):
        return None
    if 33 < percentile < 67:
        return "unreadable", f"{word!r}: {feature} is at the {percentile}th percentile"
    return "value", f"{word!r}: {feature} is at the {percentile}th percentile"
