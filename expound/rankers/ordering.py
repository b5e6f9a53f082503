"""How the gate reads order claims made without a ranked word per factor: lists after an
order cue ("In order: the loan term, your checking account"), items marked by ordinal
adverbs or places in digits ("Firstly, ... Secondly, ...", "1st: ..."), plural main
claims ("the main reasons were the loan term and your checking account") and equal
weights ("your savings were as important as the loan term").

Each reader returns the false claims it finds as :class:`~expound.rankers.claims.Problem`
of kind "order" (the gate's WRONG_ORDER). ``mentions`` are the factual mentions of
features, principal reasons named by their text standing for their group's most important
feature; ``importance`` is each ranked feature's place in the importance order.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re

from expound.explainers.facts import DecisionFacts
from expound.rankers.claims import Problem
from expound.rankers.reading import Mention, lexicon, negated, pattern

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six")
PLACE_DIGIT = re.compile(r"[1-6]")


def place_of(words: str) -> int:
    """The place words state: "second" -> 2, "#2" -> 2, "2nd" -> 2, "2" -> 2,
    "number two" -> 2, "two" (of "reason two:") -> 2, "runner-up" -> 2."""
    digit = PLACE_DIGIT.search(words)
    if digit is not None:
        return int(digit.group(0))
    if words.startswith("runner"):
        return 2
    words = words.removeprefix("number ")
    if words in NUMBER_WORDS:
        return NUMBER_WORDS.index(words) + 1
    return ORDINALS.index(words) + 1


# An item of an enumeration in prose: "Firstly, ...", "Second, ...", "..., and third, ...",
# "Finally, ..." at the start of a sentence, a line or a list item. "First" or "second"
# without "-ly" is an adverb only before a comma or colon ("the second reason" is a place,
# read by the gate's ORDINAL).
ITEM_ORDINAL = re.compile(
    r"(?:^|[.;:!?]\s+|\n\s*|,\s+and\s+)(?:[-*\u2022]\s*)?"
    r"(?:(?P<adverb>first|second|third|fourth|fifth|sixth)ly\b"
    r"|(?P<word>first|second|third|fourth|fifth|sixth)(?:\s+(?:reason|factor))?"
    r"(?=\s*[,:]|\s+of\s+all\b)"
    r"|(?P<last>finally|lastly)\b"
    # "Reason one: ...", "Factor 2: ...".
    rf"|(?:reason|factor)\s+(?:(?P<spelled>{'|'.join(NUMBER_WORDS)})|(?P<numeral>[1-6]))"
    r"(?=\s*[,:.)-])"
    # In digits: "1st: ...", "#2, ...", "Reason #3: ...".
    r"|(?:(?:reason|factor)\s+)?#(?P<hash>[1-6])(?=\s*[,:.)-])"
    r"|(?P<nth>[1-6])(?:st|nd|rd|th)(?=\s*[,:.)-]))"
)
# Where a lone item ends: its sentence or its line.
_ITEM_END = re.compile(r"[.;!?](?=\s|$)|\n")
# After every numbered item.
_LAST_PLACE = len(ORDINALS) + 1
# A claim about the main factors in the plural: "the main reasons", "the most important
# factors", "the top two reasons".
PLURAL_MAIN = re.compile(
    r"\b(?:main|most important|biggest|largest|strongest|primary|principal|key|top"
    r"|leading|dominant|chief|major|most significant)"
    r"\s+(?:(?:two|three|four|(?P<count>[2-4]))\s+)?(?:reasons|factors|drivers|causes|concerns"
    r"|problems|issues|influences|contributors)\b"
)
# "Your savings were one of the main reasons", "the main reasons included ...": a claim of
# membership only, not of which the main ones are.
_MEMBERSHIP_BEFORE = re.compile(
    r"\b(?:among|one of|two of|three of|some of|part of|included in)\s+(?:the\s+|your\s+)?$"
)
_MEMBERSHIP_AFTER = re.compile(r"\s*(?:\w+\s+)?(?:include[sd]?|including)\b")
# Equal weight: "as important as", "mattered as much as", "equally important", "the same
# weight as". A multiplier before it ("twice as important as") is a comparative, read by
# the gate's comparative cues; a negation ("not as important as") says "less".
EQUAL_WEIGHT = re.compile(
    r"\bas\s+(?:important|much|heavily|strongly|influential|significant|decisive)"
    r"\s+(?:a\s+(?:factor|reason)\s+)?as\b"
    # "as big as" alone may compare values ("an amount as large as ..."): only of effects.
    r"|\bas\s+(?:big|large|great|strong)\s+(?:a\s+(?:factor|reason|effect|role)|an\s+"
    r"(?:effect|impact|influence))\s+as\b"
    r"|\bequally\b(?:\s+(?:important|influential|significant|decisive|heavily))?"
    # "had the same effect" says the same direction more often than the same size.
    r"|\bthe same (?:weight|importance|influence)(?:\s+as)?\b"
    r"|\bequal (?:weight|importance|influence|footing)\b"
    r"|\bequal\s+in\s+(?:weight|importance|influence)\b|\bon\s+(?:an?\s+)?par\s+with\b"
)
_MULTIPLIER = re.compile(r"\b(?:twice|half|\w+\s+times)\s+$")
# "Your checking account was in order": a judgement (all is fine), not a list.
_JUDGED_IN_ORDER = re.compile(
    r"\b(?:was|were|is|are|be|been|being|seem\w*|look\w*|appear\w*|all|everything|not)\s+$"
)
# A comparative without its "than": "..., but your savings were more important" compares
# the factor it is said of with the one named just before it in the sentence.
BARE_COMPARATIVE = re.compile(
    r"\b(?P<adjective>more|less)\s+(?:important|significant|influential|decisive)\b"
    r"(?!\s+(?:than|to|for)\b)"
    r"|\b(?:mattered|weighed|counted)\s+(?:even\s+|much\s+|far\s+|still\s+)?(?P<verb>more|less)\b"
    r"(?!\s+(?:heavily\s+)?(?:than|to|for)\b)"
)
# Attributions this close (relative to the larger) are equal: rounding in the text, not
# a difference of rank.
EQUAL_TOLERANCE = 0.05


def listed_order_problems(
    facts: DecisionFacts,
    text: str,
    mentions: list[Mention],
    sentences: list[tuple[int, int]],
    importance: dict[str, int | None],
) -> list[Problem]:
    """A list stated in an order ("In order: the loan term, your savings", "... in that
    order", "In order of contribution: ..."): the factors its sentence names, in the order
    first named, run by importance (ranked factors; one reason's features rank together),
    or by size of contribution where the cue says so (lexicon ``order_cues``)."""
    cues = lexicon()["order_cues"]
    problems = []
    starts, sentence_starts = [m.start for m in mentions], [s for s, _ in sentences]
    for by_contribution in (False, True):
        for match in pattern(cues["contribution" if by_contribution else "importance"]).finditer(
            text
        ):
            at = bisect.bisect_right(sentence_starts, match.start()) - 1
            if at < 0 or _JUDGED_IN_ORDER.search(text, max(0, match.start() - 16), match.start()):
                continue
            seen: list[Mention] = []
            for mention in _between(mentions, starts, *sentences[at]):
                if all(m.feature != mention.feature for m in seen) and (
                    by_contribution or importance.get(mention.feature) is not None
                ):
                    seen.append(mention)
            for earlier, later in itertools.pairwise(seen):
                if by_contribution:
                    heavier, lighter = (
                        abs(facts.factors[m.feature].contribution) for m in (earlier, later)
                    )
                    reversed_ = heavier < lighter
                else:
                    reversed_ = (importance[earlier.feature] or 0) > (
                        importance[later.feature] or 0
                    )
                if reversed_:
                    problems.append(
                        Problem(
                            "order",
                            earlier.start,
                            later.end,
                            f"lists {earlier.feature} before {later.feature} "
                            f"{match.group(0)!r}; {later.feature} weighed more",
                        )
                    )
    return problems


def ordinal_item_problems(
    text: str, mentions: list[Mention], importance: dict[str, int | None]
) -> list[Problem]:
    """Items marked "Firstly", "Secondly", ... "Finally": each item's first ranked factor
    (an item runs to the next marker) must not outrank the factor of an item placed before
    it, whatever order the items are written in."""
    markers = list(ITEM_ORDINAL.finditer(text))
    starts = [m.start for m in mentions]
    if len(markers) == 1:
        return _lone_item_problems(text, markers[0], mentions, starts, importance)
    if not markers:
        return []
    items: list[tuple[int, Mention]] = []
    for marker, following in itertools.zip_longest(markers, markers[1:]):
        end = following.start() if following is not None else len(text)
        item = next(
            (m for m in _between(mentions, starts, marker.end(), end) if importance.get(m.feature)),
            None,
        )
        if item is None:
            continue
        items.append((_item_place(marker), item))
    items.sort(key=lambda placed: (placed[0], placed[1].start))
    problems = []
    for (_, earlier), (_, later) in itertools.pairwise(items):
        if (importance[earlier.feature] or 0) > (importance[later.feature] or 0):
            problems.append(
                Problem(
                    "order",
                    min(earlier.start, later.start),
                    max(earlier.end, later.end),
                    f"places {earlier.feature} before {later.feature} in its enumeration; "
                    "the importance order is reversed",
                )
            )
    return problems


def _lone_item_problems(
    text: str,
    marker: re.Match[str],
    mentions: list[Mention],
    starts: list[int],
    importance: dict[str, int | None],
) -> list[Problem]:
    """A lone item placed relatively ("2nd: the loan term", "Second: ...", "#2, ..."): its
    sentence's first ranked factor holds the place it states, as "Reason #2:" does (read by
    the gate's ORDINAL, with "Reason two:" and "Factor 3 -"). "Finally" states no place."""
    if (
        marker.group("last")
        or marker.group("spelled")
        or marker.group("numeral")
        or re.search(r"(?:reason|factor)\s+#", marker.group(0))
    ):
        return []
    stop = _ITEM_END.search(text, marker.end())
    end = stop.start() if stop is not None else len(text)
    item = next(
        (m for m in _between(mentions, starts, marker.end(), end) if importance.get(m.feature)),
        None,
    )
    place = _item_place(marker)
    if item is None or importance[item.feature] == place:
        return []
    return [
        Problem(
            "order",
            marker.start(),
            item.end,
            f"places {item.feature} {place} in its enumeration; its rank is "
            f"{importance[item.feature]}",
        )
    ]


def _item_place(marker: re.Match[str]) -> int:
    groups = ("adverb", "word", "spelled", "hash", "nth", "numeral")
    words = next((marker.group(g) for g in groups if marker.group(g)), None)
    return place_of(words) if words else _LAST_PLACE  # "Finally", "Lastly"


def item_marker_spans(text: str) -> list[tuple[int, int]]:
    """Where the text marks items with places ("Secondly, ...", "Reason 2: ...")."""
    return [match.span() for match in ITEM_ORDINAL.finditer(text)]


def place_digits(text: str) -> list[tuple[int, int]]:
    """The digits of items placed in digits ("1st: ...", "#2, ...") and of the count of
    main factors ("the top 2 reasons"): a place or a count, like a list marker, states no
    number of the decision."""
    items = [
        match.span(group)
        for match in ITEM_ORDINAL.finditer(text)
        for group in ("hash", "nth", "numeral")
        if match.group(group)
    ]
    return items + [m.span("count") for m in PLURAL_MAIN.finditer(text) if m.group("count")]


def plural_main_problems(
    facts: DecisionFacts,
    text: str,
    mentions: list[Mention],
    spans: list[tuple[int, int]],
    importance: dict[str, int | None],
) -> list[Problem]:
    """ "The main reasons were X and Y" (or "X and Y were the main reasons"): the factors
    named with the cue must be the top ones, and when listed after it, in that order.

    The list is the cue's clause after it (up to a sequence cue: "..., followed by your
    savings" names the next one), the items of a list the cue opens with a colon, else the
    clause before it. Factors that all pushed the other way ("the main factors in your
    favour", of a decline) are ranked among that side by size of contribution. "One of the
    main reasons" and "the main reasons included" claim membership only.
    """
    sequence = pattern(lexicon()["sequence_cues"])
    ranking = _sides(facts, importance)
    problems = []
    starts, clause_starts = [m.start for m in mentions], [s for s, _ in spans]
    for match in PLURAL_MAIN.finditer(text):
        at = bisect.bisect_right(clause_starts, match.start()) - 1
        if at < 0 or match.start() >= spans[at][1]:
            continue
        start, end = spans[at]
        if not _between(mentions, starts, match.end(), end) and text[
            match.end() : end
        ].rstrip().endswith(":"):
            end = _list_end(text, end)
        after = _between(mentions, starts, match.end(), end)
        before = [
            m for m in _between(mentions, starts, start, match.start()) if m.end <= match.start()
        ]
        cut = sequence.search(text, match.end(), end)
        if cut is not None and after and cut.start() < after[0].start and before:
            # "X and Y were the main reasons, followed by Z": Z is not one of them.
            after = []
        elif cut is not None and after:
            after = [m for m in after if m.start < cut.start()] or after
        named = after or before
        if not named:
            continue
        side = next((r for r in ranking if all(m.feature in r for m in named)), ranking[0])
        for mention in named:
            if side.get(mention.feature) is None:
                problems.append(
                    Problem(
                        "order",
                        mention.start,
                        mention.end,
                        f"counts {mention.feature} among {match.group(0)!r}; it is not one "
                        "of the principal factors",
                    )
                )
        ranks = [side[m.feature] or 0 for m in named if side.get(m.feature)]
        membership = _MEMBERSHIP_BEFORE.search(
            text, max(0, match.start() - 30), match.start()
        ) or _MEMBERSHIP_AFTER.match(text, match.end(), end)
        if membership or not ranks:
            continue
        placed = sorted(set(ranks))
        # The claim's span: the cue and the names, before it ("X and Y were the main
        # reasons") or after it.
        claim = (min(match.start(), named[0].start), max(match.end(), named[-1].end))
        if placed != list(range(1, len(placed) + 1)):
            missing = next(r for r in range(1, len(placed) + 1) if r not in placed)
            problems.append(
                Problem(
                    "order",
                    *claim,
                    f"names factors of rank {', '.join(map(str, placed))} as "
                    f"{match.group(0)!r}, leaving out rank {missing}, which outweighs the "
                    "last of them",
                )
            )
        if after and ranks != sorted(ranks):
            problems.append(
                Problem(
                    "order",
                    *claim,
                    f"lists {match.group(0)!r} out of their importance order",
                )
            )
    return problems


def _sides(facts: DecisionFacts, importance: dict[str, int | None]) -> list[dict[str, int | None]]:
    """The rankings a plural main claim may be about: the importance order, then the
    factors that pushed the other way, by size of contribution (protected attributes,
    which no text names, left out)."""
    other = sorted(
        (
            f
            for f in facts.factors.values()
            if f.raises_risk != facts.prediction.adverse
            and not facts.manifest.feature(f.feature).protected
        ),
        key=lambda f: -abs(f.contribution),
    )
    return [importance, {f.feature: place for place, f in enumerate(other, start=1)}]


# An item of a list a cue opens with a colon: "1. ...", "2) ...", "- ...", "* ...".
_LIST_LINE = re.compile(r"\n[ \t]*(?:\d[.)]|[-*\u2022])[^\n]*")


def _list_end(text: str, end: int) -> int:
    """Where the list of lines right after ``end`` ends (``end`` when there is none)."""
    while (line := _LIST_LINE.match(text, end)) is not None:
        end = line.end()
    return end


def equal_weight_problems(
    facts: DecisionFacts,
    text: str,
    mentions: list[Mention],
    spans: list[tuple[int, int]],
    weight: dict[str, float],
) -> list[Problem]:
    """ "X was as important as Y", "X and Y mattered equally": false unless the two
    attributions are equal (within :data:`EQUAL_TOLERANCE`); "X was not as important as
    Y" says X weighed less.

    Args:
        weight: each feature's weight in the importance order (a principal factor above
            every other, and the more important one above the less).
    """
    problems = []
    starts, clause_starts = [m.start for m in mentions], [s for s, _ in spans]
    for match in EQUAL_WEIGHT.finditer(text):
        at = bisect.bisect_right(clause_starts, match.start()) - 1
        if at < 0 or match.end() > spans[at][1]:
            continue
        start, end = spans[at]
        if _MULTIPLIER.search(text, max(start, match.start() - 20), match.start()):
            continue
        left = [
            m for m in _between(mentions, starts, start, match.start()) if m.end <= match.start()
        ]
        right = _between(mentions, starts, match.end(), end)
        if left and right:
            pair = (left[-1], right[0])
        elif len(left) >= 2 and not match.group(0).startswith("as"):
            # "X and Y were equally important"; "X and Y raised the risk by as much as
            # 0.3" compares no two factors.
            pair = (left[-2], left[-1])
        else:
            continue
        first, second = (m.feature for m in pair)
        if first == second:
            continue
        if negated(text, match.start()):
            if weight[first] >= weight[second]:
                problems.append(
                    Problem(
                        "order",
                        match.start(),
                        match.end(),
                        f"says {first} weighed less than {second}; it weighed more",
                    )
                )
            continue
        a, b = (abs(facts.factors[f].contribution) for f in (first, second))
        if not math.isclose(a, b, rel_tol=EQUAL_TOLERANCE):
            problems.append(
                Problem(
                    "order",
                    match.start(),
                    match.end(),
                    f"says {first} and {second} weighed the same; their contributions "
                    f"were {a:.3f} and {b:.3f}",
                )
            )
    return problems


def _between(mentions: list[Mention], starts: list[int], low: int, high: int) -> list[Mention]:
    """The mentions starting in [low, high), found by bisection (``mentions`` in order)."""
    return mentions[bisect.bisect_left(starts, low) : bisect.bisect_left(starts, high)]


def bare_comparative_problems(
    text: str,
    mentions: list[Mention],
    spans: list[tuple[int, int]],
    sentences: list[tuple[int, int]],
    weight: dict[str, float],
) -> list[Problem]:
    """ "The loan term was important, but your savings were more important": the factor a
    bare comparative is said of (the last one named before it in its clause) against the
    one named just before that in its sentence; "more" says it weighed more, "less" less.

    Args:
        weight: each mentioned feature's weight in the importance order.
    """
    problems = []
    starts = [m.start for m in mentions]
    clause_starts, sentence_starts = [s for s, _ in spans], [s for s, _ in sentences]
    for match in BARE_COMPARATIVE.finditer(text):
        if negated(text, match.start()):
            continue
        at = bisect.bisect_right(clause_starts, match.start()) - 1
        here = bisect.bisect_right(sentence_starts, match.start()) - 1
        if at < 0 or here < 0:
            continue
        named = [
            m
            for m in _between(mentions, starts, sentences[here][0], match.start())
            if m.end <= match.start()
        ]
        if len(named) < 2 or named[-1].start < spans[at][0]:
            continue
        said, other = (
            named[-1],
            next((m for m in reversed(named) if m.feature != named[-1].feature), None) or named[-1],
        )
        if said.feature == other.feature:
            continue
        more = (match.group("adjective") or match.group("verb")) == "more"
        heavier, lighter = (said, other) if more else (other, said)
        if weight[heavier.feature] <= weight[lighter.feature]:
            problems.append(
                Problem(
                    "order",
                    match.start(),
                    match.end(),
                    f"says {heavier.feature} weighed more than {lighter.feature}; it weighed less",
                )
            )
    return problems
