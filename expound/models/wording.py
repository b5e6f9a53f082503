"""The words that state a feature's value, and the rule that keeps features apart by them.

A text states a category by its reviewed description (or its name, where it has none) and a
banded code by its label; the gate reads those words back as the value. While it checks one
factor's value, it blanks every value this decision actually has, so that a value of one
factor holding a word of another ("a car or other property" around the purpose "other") is
not read as a claim about the other. So if one feature's value were worded exactly as a value
of another ("none" for both the guarantor and the other instalment plans), a text that gave
one factor the other's actual value would have that value blanked, and would pass. A
manifest where this can happen is refused, naming the field to reword
(:func:`wording_collisions`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from expound.models.manifest import TODO, FeatureSpec

# Shorter phrases are not read as values (too many ordinary words of that length).
MIN_PHRASE_CHARS = 4
# "or" between two alternatives of a description, not inside a bound ("200 DM or more").
ALTERNATIVE = re.compile(r",? or (?!(?:more|less|fewer|longer|shorter|over|under)\b)")


def parenthesis_free(value: str) -> str:
    """A value as phrases write it inside their own parentheses:
    "overdrawn (balance below 0 DM)" -> "overdrawn, balance below 0 DM"."""
    return value.replace(" (", ", ").replace(")", "")


def category_phrases(description: str) -> list[str]:
    """The ways a text names a category by its description: as written, with its
    parenthesis set off by a comma instead ("overdrawn, balance below 0 DM"), by its head
    alone ("overdrawn"), and by each alternative a description offers ("no savings or
    unknown": "no savings", "unknown"; a bound such as "200 DM or more" is one phrase). An
    imported model's categories are codes ("f_1") that no text names, so without the
    shorter forms a wrong category written loosely would read as none named, and pass."""
    if not description:
        return []
    head, _, rest = description.partition(" (")
    forms = [description, f"{head}, {rest.rstrip(')')}", head] if rest else [description]
    alternatives = [a.strip() for a in ALTERNATIVE.split(head)]
    if len(alternatives) > 1:
        forms += [a for a in alternatives if a not in forms]
    return forms


def value_phrases(spec: FeatureSpec) -> dict[str, list[str]]:
    """The phrases that name each value of a feature whose values have names, by value key
    (the category, or the banded code as a string): a category's name and description, a
    banded code's reviewed label. Empty for a feature whose values are numbers."""
    if spec.type == "category":
        named = {}
        for category in spec.categories or []:
            phrases = category_phrases(spec.category_descriptions.get(category, ""))
            named[category] = [
                p for p in [category.replace("_", " "), *phrases] if len(p) >= MIN_PHRASE_CHARS
            ]
        return named
    return {key: [label] for key, label in spec.value_labels.items()}


def _stated(spec: FeatureSpec) -> Iterator[tuple[str, str]]:
    """(field path, words) of each value the texts state in words."""
    for category in spec.categories or []:
        if category in spec.category_descriptions:
            path = f"features[{spec.name}].category_descriptions[{category}]"
        else:
            path = f"features[{spec.name}].categories[{category}]"
        yield path, spec.category_wording(category)
    for key, label in spec.value_labels.items():
        yield f"features[{spec.name}].value_labels[{key}]", label


def _blanked(words: str) -> set[str]:
    """The forms of a stated value the gate blanks, as it matches them (lowered)."""
    forms = {words, parenthesis_free(words)}
    return {f.lower().rstrip(")") for f in forms if len(f) >= MIN_PHRASE_CHARS}


def wording_collisions(features: list[FeatureSpec]) -> list[str]:
    """One message per value worded exactly as a phrase naming a value of another feature.

    Wording still marked TODO is left to the TODO check.
    """
    read = {
        spec.name: [
            (key, phrase.lower())
            for key, phrases in value_phrases(spec).items()
            for phrase in phrases
            if not phrase.startswith(TODO)
        ]
        for spec in features
    }
    found = []
    for spec in features:
        for path, words in _stated(spec):
            if words.startswith(TODO):
                continue
            forms = _blanked(words)
            for other in features:
                if other.name == spec.name:
                    continue
                clash = next((k for k, phrase in read[other.name] if phrase in forms), None)
                if clash is not None:
                    found.append(
                        f"{path}: {words!r} also names {other.name}'s value {clash!r}; a text "
                        f"stating it of {other.name} could not be told wrong: word them apart"
                    )
    return found
