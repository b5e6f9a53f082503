"""Which category a clause states of a factor, in the words of the model's own descriptions.

A category is named by its description, its name, or one alternative of a description
that offers two ("no savings or unknown": "no savings", "unknown";
:func:`~expound.models.wording.category_phrases`). Three more shapes are read here, each
from the descriptions alone, so that an imported model's coded categories ("f_1") are
read as the demo models' are:

- a category negated ("your checking account was not overdrawn") states any other one;
- an absence ("you have no savings", "you don't have any savings") states the category
  whose description is one of absence ("no savings or unknown", "neither", "none known");
  a factor with no such category cannot be read, and fails closed; its presence ("you
  have a checking account") states any category but those;
- a word of a description outside any whole description ("your checking account had your
  salary paid in") states a value in words the gate cannot bind to one category: it fails
  closed, unless the word is one of the actual category's own.
"""

from __future__ import annotations

import re

from expound.explainers.facts import DecisionFacts
from expound.models.manifest import FeatureSpec
from expound.models.wording import value_phrases
from expound.rankers.claims import Problem
from expound.rankers.reading import feature_terms, lexicon, pattern, value_key

# "not", "never", "n't" right before a category (with "been"/"be"): "was not overdrawn".
NOT_BEFORE = re.compile(r"(?:\bnot|\bnever|n't)\s+(?:(?:been|be)\s+)?$")
# An absence of the factor, right before its name: "no savings", "without any savings",
# "don't have any savings", "did not have a checking account".
ABSENT_BEFORE = re.compile(
    r"(?:\bno|\bwithout(?:\s+any)?|(?:\bnot|n't)\s+(?:have|has|had|hold|held)\s+(?:any|an|a))"
    r"\s+$"
)
# The factor had, right before its name: "you have a checking account" (no absence).
PRESENT_BEFORE = re.compile(
    r"\b(?:you|the applicant|they|he|she)\s+(?:have|has|had|hold|holds|held)\s+(?:an?\s+|some\s+)?$"
)
# A description of absence: "no checking account", "none known", "neither".
ABSENCE = re.compile(r"^(?:no|none|neither|without)\b")
WORD = re.compile(r"[a-z][a-z'-]*[a-z]")


def _actual(facts: DecisionFacts, feature: str) -> str | None:
    spec = facts.manifest.feature(feature)
    value = next(i.value for i in facts.attributions.items if i.feature == feature)
    return value_key(spec, value)


def absence_categories(spec: FeatureSpec) -> set[str]:
    """The categories whose description states an absence ("no savings or unknown")."""
    return {
        category
        for category, phrases in value_phrases(spec).items()
        if any(ABSENCE.match(phrase.lower()) for phrase in phrases)
    }


def category_claims(
    facts: DecisionFacts,
    clause: str,
    feature: str,
    plain: str,
    around: tuple[int, int],
) -> bool | None:
    """Whether the clause states the feature's actual category (None: states none).

    A category named, or the label of a banded code, is stated; a category negated states
    that it is another one; an absence states the category of absence, a presence any
    other.

    Args:
        facts: the decision.
        clause: the clause, lowered, with feature names and the decision's actual values
            blanked (a value of another factor holding this one's words is no claim).
        feature: the factor the clause names.
        plain: the same clause as written (lowered): a category phrase holding the
            feature's own name ("no checking account"), and a negated actual category
            (blanked in ``clause``), are read here.
        around: the mention's span in ``clause``.
    """
    spec = facts.manifest.feature(feature)
    by_value = value_phrases(spec)
    if not by_value:
        return None
    actual = _actual(facts, feature)
    start, end = around
    named: set[str] = set()
    denied: set[str] = set()
    for category, phrases in by_value.items():
        if not phrases:
            continue
        found = pattern(phrases)
        for match in found.finditer(clause):
            (denied if NOT_BEFORE.search(plain, 0, match.start()) else named).add(category)
        # The actual category is blanked in ``clause``: negated, it is read as written.
        if category == actual and any(
            NOT_BEFORE.search(plain, 0, m.start()) for m in found.finditer(plain)
        ):
            denied.add(category)
        if any(
            m.start() <= start and m.end() >= end and m.end() - m.start() > end - start
            for m in found.finditer(plain)
        ):
            named.add(category)
    if spec.type == "category" and ABSENT_BEFORE.search(plain, 0, start):
        named |= absence_categories(spec)
    elif spec.type == "category" and PRESENT_BEFORE.search(plain, 0, start):
        denied |= absence_categories(spec)
    if not named and not denied:
        return None
    return (not named or actual in named) and actual not in denied


def absence_problems(
    facts: DecisionFacts, plain: str, offset: int, feature: str, start: int
) -> list[Problem]:
    """An absence stated of a factor ("no employment", "no dependants") that no category
    of absence reads (:func:`category_claims`): a count is read as none, anything else
    fails closed.

    Args:
        plain: the clause as written (lowered), at ``offset`` of the text.
        start: where the factor is named in ``plain``.
    """
    cue = ABSENT_BEFORE.search(plain, 0, start)
    if cue is None:
        return []
    spec = facts.manifest.feature(feature)
    if spec.type == "category" and absence_categories(spec):
        return []
    number = facts.factors[feature].number
    if spec.type != "category" and number is not None:
        if number == 0:
            return []
        message = f"states no {feature}; its value is {facts.factors[feature].value_text!r}"
        return [Problem("value", offset + cue.start(), offset + start, message)]
    message = f"states an absence of {feature}; none of its values is worded as one"
    return [Problem("unreadable", offset + cue.start(), offset + start, message)]


def _description_words(spec: FeatureSpec, names: set[str]) -> dict[str, set[str]]:
    """Each category's words that name it, by category: its phrases' words less joining
    words, number words and the feature's own name's words."""
    words = lexicon()
    left_out = set(words["joining_words"]) | set(words["number_words"]) | names
    return {
        category: {
            word
            for phrase in phrases
            for word in WORD.findall(phrase.lower())
            if word not in left_out and not ABSENCE.match(word)
        }
        for category, phrases in value_phrases(spec).items()
    }


def unbound_value_words(
    facts: DecisionFacts, clause: str, offset: int, feature: str
) -> list[Problem]:
    """Words of the factor's category descriptions left in ``clause`` once every whole
    description is blanked ("had your salary paid in"): a value stated in words that bind
    to no one category. Words of the actual category alone ("skilled" of "skilled employee
    or official") are no claim to read.

    Args:
        clause: the clause, lowered, with feature names, the decision's actual values and
            every value phrase of the manifest blanked.
        offset: where ``clause`` starts in the text.
    """
    spec = facts.manifest.feature(feature)
    if spec.type != "category":
        return []
    names = {
        word
        for term, owner in feature_terms(facts).items()
        if owner == feature
        for word in WORD.findall(term)
    }
    words = _description_words(spec, names)
    actual = _actual(facts, feature)
    own = words.get(actual, set()) if actual is not None else set()
    unbound = set().union(*words.values()) - own
    return [
        Problem(
            "unreadable",
            offset + match.start(),
            offset + match.end(),
            f"{match.group(0)!r} is a word of a category of {feature} but names none whole; "
            "the verifier cannot read which one the text states",
        )
        for match in WORD.finditer(clause)
        if match.group(0) in unbound
    ]
