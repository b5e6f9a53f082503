"""The voice of a text: analyst and compliance texts speak of the applicant in the third
person. The gate fails one that addresses its reader as "you" (``WRONG_VOICE``), however
true its claims; applicant texts are unaffected. Free mode over chat asks for the third
person (``chat.v2``) and words the facts so; ``chat.v1`` stays loadable by name."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from bench.eval_texts import faithful_and_mutants
from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.deterministic import deterministic_explanation
from expound.generators.grammar import phrase_bank
from expound.generators.prompting import CHAT_TEMPLATE, chat_prompt, chat_template
from expound.models.manifest import SECOND_PERSON
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify, verify_candidate
from expound.rankers.routing import preferred_styles
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for, violation_kinds

STAFF = (Audience.ANALYST, Audience.COMPLIANCE)
# chat.v1 as it was released: records that name it must keep meaning this text.
CHAT_V1_SHA256 = "ef7f995e0af6de91cabf4892167342159af032f07db29b999756366d390f1a3c"


@pytest.fixture(params=STAFF, ids=lambda a: a.value)
def staff(
    request: pytest.FixtureRequest, registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant, request.param, "Why was it declined?")


@pytest.fixture
def applicant(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant, Audience.APPLICANT, "Why?")


# Sentences that state nothing of the decision but speak to the reader; appended to a
# faithful text, only the voice is wrong.
SPOKEN = [
    "As you can see, the record is complete.",
    "Your review may start with the record.",
    "The final word is yours.",
    "See for yourself in the record.",
    "YOUR review may start with the record.",
    "You may keep the record on file.",
]


@pytest.mark.parametrize("sentence", SPOKEN)
def test_second_person_fails_for_analyst_and_compliance_only(
    staff: DecisionFacts, applicant: DecisionFacts, sentence: str
) -> None:
    neutral = deterministic_explanation(staff)
    assert verify(staff, neutral).passed
    verdict = verify(staff, f"{neutral} {sentence}")
    assert {v.kind for v in verdict.violations} == {ViolationKind.WRONG_VOICE}
    (violation,) = verdict.violations
    start = len(neutral) + 1
    assert violation.start >= start and SECOND_PERSON.fullmatch(
        f"{neutral} {sentence}"[violation.start : violation.end]
    )
    assert not verify_candidate(staff, f"{neutral} {sentence}").passed
    # The applicant is the reader of their own texts: "you" is right there.
    spoken_to = f"{deterministic_explanation(applicant)} {sentence}"
    assert verify(applicant, spoken_to).passed, verify(applicant, spoken_to).violations


def test_every_second_person_word_is_a_violation_of_its_own(staff: DecisionFacts) -> None:
    text = f"{deterministic_explanation(staff)} {SPOKEN[0]} {SPOKEN[1]}"
    voiced = [v for v in verify(staff, text).violations if v.kind is ViolationKind.WRONG_VOICE]
    assert [text[v.start : v.end] for v in voiced] == ["you", "Your"]


@pytest.mark.parametrize(
    "sentence",
    ["The layout of the record is standard.", "The record is kept at Bayou Street."],
)
def test_only_whole_words_are_second_person(staff: DecisionFacts, sentence: str) -> None:
    assert "you" in sentence.lower()
    assert ViolationKind.WRONG_VOICE not in violation_kinds(
        staff, f"{deterministic_explanation(staff)} {sentence}"
    )


def test_a_reason_in_the_applicants_wording_is_the_same_reason_in_the_wrong_voice(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.COMPLIANCE)
    text = deterministic_explanation(facts)
    spoken = text.replace("the applicant's checking account", "your checking account")
    assert spoken != text
    # Read as CHK01 (no WRONG_REASON, the plan covered), but said to the reader.
    assert violation_kinds(facts, spoken) == {ViolationKind.WRONG_VOICE}


def test_a_true_claim_addressed_to_the_reader_fails(staff: DecisionFacts) -> None:
    text = deterministic_explanation(staff)
    assert "the length of the loan term" in text or "duration_months" in text
    spoken = f"{text} Your loan term of 48 months raised the risk."
    assert violation_kinds(staff, spoken) == {ViolationKind.WRONG_VOICE}


def test_the_manifests_own_wording_is_quoted_not_spoken(staff: DecisionFacts) -> None:
    """A manifest may word a feature or a value in the second person: every text must
    quote them to state them, so those words are the manifest's, not the text's voice."""
    assert staff.plan is not None
    valued, described = (p.feature for p in staff.plan.factors[:2])
    worded = f"{staff.manifest.feature(described).description} you reported"
    features = [
        spec.model_copy(update={"description": worded}) if spec.name == described else spec
        for spec in staff.manifest.features
    ]
    value = f"{staff.factors[valued].value_text} as you stated"
    factors = {
        **staff.factors,
        described: dataclasses.replace(staff.factors[described], description=worded),
        valued: dataclasses.replace(staff.factors[valued], value_text=value),
    }
    reworded = dataclasses.replace(
        staff, manifest=staff.manifest.model_copy(update={"features": features}), factors=factors
    )
    assert reworded.manifest.feature(described).description == worded
    text = deterministic_explanation(reworded)
    if staff.audience is Audience.ANALYST:
        # The analyst's text names factors by their identifiers: say it in a sentence.
        direction = "raised" if staff.factors[described].raises_risk else "lowered"
        text += f" The {worded} {direction} the risk."
    assert f"{worded} " in text and value in text
    assert verify(reworded, text).passed, verify(reworded, text).violations
    assert violation_kinds(reworded, f"{text} {SPOKEN[1]}") == {ViolationKind.WRONG_VOICE}


@pytest.mark.parametrize("audience", STAFF, ids=lambda a: a.value)
@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_deterministic_staff_texts_pass_the_voice_check(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    audience: Audience,
    model_id: str,
) -> None:
    for row in (denied_applicant, approved_applicant):
        facts = facts_for(registry, model_id, row, audience)
        text = deterministic_explanation(facts)
        assert SECOND_PERSON.search(text) is None, text
        assert verify(facts, text).passed


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


@pytest.mark.parametrize("audience", STAFF, ids=lambda a: a.value)
def test_no_phrase_of_the_staff_phrase_banks_speaks_to_the_reader(audience: Audience) -> None:
    # Every phrasing, not just the ones a sample of the grammars happens to draw.
    bank = phrase_bank(audience)
    phrasings = _strings({k: v for k, v in bank.items() if k not in ("comment", "sha256")})
    assert len(phrasings) > 20
    spoken = [p for p in phrasings if SECOND_PERSON.search(p)]
    assert spoken == []
    # The applicant's bank does speak to the reader: the check can see it.
    assert any(SECOND_PERSON.search(p) for p in _strings(phrase_bank(Audience.APPLICANT)))


# -- free mode over chat -------------------------------------------------------------------


def test_drafting_asks_with_chat_v2_and_chat_v1_still_loads_unchanged() -> None:
    current = chat_template()
    assert CHAT_TEMPLATE == current.template_id == "chat.v2"
    assert json.loads(current.text)["id"] == "chat.v2"
    v1 = chat_template("chat.v1")
    assert v1.template_id == json.loads(v1.text)["id"] == "chat.v1"
    assert v1.sha256 == hashlib.sha256(v1.text.encode()).hexdigest() == CHAT_V1_SHA256
    assert v1.sha256 != current.sha256


def test_the_applicants_chat_instructions_are_unchanged(applicant: DecisionFacts) -> None:
    old, new = (json.loads(chat_template(name).text) for name in ("chat.v1", "chat.v2"))
    assert new["audience"]["APPLICANT"] == old["audience"]["APPLICANT"]
    assert {k: v for k, v in new.items() if k not in ("id", "audience")} == {
        k: v for k, v in old.items() if k not in ("id", "audience")
    }
    for style in preferred_styles(applicant):
        (system, _), _ = chat_prompt(applicant, style)
        assert 'as "you"' in system.content and "third person" not in system.content


def _data(user: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(user[len("<data>\n") : -len("\n</data>")])
    return loaded


def test_the_staff_chat_prompt_asks_for_the_third_person_with_neutral_facts(
    staff: DecisionFacts,
) -> None:
    applicant_wordings = [
        r.text for r in staff.reasons if r.text != staff.manifest.reason(r.code).third_person
    ]
    assert applicant_wordings, "the denied example has a reason worded to the applicant"
    for style in preferred_styles(staff):
        (system, user), template = chat_prompt(staff, style)
        assert template.template_id == "chat.v2"
        assert "third person" in system.content
        assert all(f'"{word}"' in system.content for word in ("you", "your", "yours"))
        assert 'as "you"' not in system.content
        data = _data(user.content)
        del data["question"]  # the reader's own words, quoted
        words = json.dumps(data)
        assert SECOND_PERSON.search(words) is None, words
        assert not any(w.lower() in words.lower() for w in applicant_wordings)
    if staff.audience is Audience.COMPLIANCE:
        reasons = _data(chat_prompt(staff, "contrastive")[0][1].content)["principal_reasons"]
        assert any("the applicant's" in reason for reason in reasons)


# -- the eval's mutation suite ---------------------------------------------------------


@pytest.mark.parametrize("row", ["denied", "approved"])
def test_the_voice_mutant_is_staff_only_and_the_gate_rejects_it_for_its_voice(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    row: str,
) -> None:
    applicant_row = denied_applicant if row == "denied" else approved_applicant
    for variant, audience in enumerate(Audience):
        facts = facts_for(registry, GBM, applicant_row, audience)
        faithful, mutants = faithful_and_mutants(facts, variant)
        if audience is Audience.APPLICANT:
            assert "voice" not in mutants
            continue
        assert verify(facts, faithful).passed
        spoken = mutants["voice"]
        assert SECOND_PERSON.search(faithful) is None and SECOND_PERSON.search(spoken)
        assert violation_kinds(facts, spoken) == {ViolationKind.WRONG_VOICE}, spoken
