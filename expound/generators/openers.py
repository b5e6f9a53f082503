"""Sentence openers: what makes a text read as a template when it repeats.

One definition serves the grammar (which never lets a text use an opener twice), the
deterministic text and ``make eval`` (which counts repeats). An opener is a sentence's
first word, lower-cased; after an article or a possessive it is the first two words
("the main", "your application"), since "The ..." alone says nothing about the phrasing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

# A sentence ends at a terminator followed by white space and more text: "0.938" ends
# nothing, and neither does the marker of a numbered list ("reasons: 1. Status ...").
_SENTENCE_END = re.compile(r"(?<![\s(:]\d)(?<!^\d)[.!?](?=\s+\S)")
_WORD = re.compile(r"[\w'=+-]+")
_DETERMINERS = frozenset({"the", "a", "an", "your", "this", "these", "its", "their", "our"})


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append(text[start : match.end()].strip())
        start = match.end()
    spans.append(text[start:].strip())
    return [s for s in spans if s]


def opener(sentence: str) -> str:
    """The opener of one sentence ("" for one without words)."""
    words = [str(w).lower() for w in _WORD.findall(sentence)]
    if not words:
        return ""
    if words[0] in _DETERMINERS and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0]


def repeated_openers(text: str) -> list[str]:
    """The openers ``text`` uses more than once (empty: every sentence opens differently)."""
    counts = Counter(opener(s) for s in sentences(text))
    return sorted(o for o, count in counts.items() if count > 1 and o)


def assign_openers(
    slots: Sequence[Sequence[str]], optional: Sequence[bool] | None = None
) -> list[set[str]]:
    """Shares out openers among the sentence slots of one text so no two slots share one.

    ``slots`` holds, per sentence slot, the sentences it may be written as; ``optional``
    marks slots a text may leave out (they may end with no opener). Each slot gets
    a disjoint set of openers, round by round, the slot with the fewest choices first, so
    every slot keeps at least one phrasing whenever that is possible and the rest are
    spread evenly (variety in every slot, not all of it in the first).

    Raises:
        ValueError: a required slot is left with no opener of its own (the bank is too
            small).
    """
    choices = [list(dict.fromkeys(opener(s) for s in slot)) for slot in slots]
    taken: set[str] = set()
    given: list[set[str]] = [set() for _ in slots]
    leave_out = list(optional) if optional is not None else [False] * len(slots)
    # Required slots choose first, the most constrained of them first.
    order = sorted(range(len(slots)), key=lambda i: (leave_out[i], len(choices[i]), i))
    progress = True
    while progress:
        progress = False
        for index in order:
            free = [o for o in choices[index] if o not in taken]
            if free:
                given[index].add(free[0])
                taken.add(free[0])
                progress = True
    for index, openers in enumerate(given):
        if not openers and choices[index] and not leave_out[index]:
            raise ValueError(f"sentence slot {index} has no opener left: {choices[index]}")
    return given
