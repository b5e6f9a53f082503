"""Reason codes in two voices: the applicant's ("your checking account", notices and
applicant texts) and the third person's (compliance and analyst texts); the gate reads
both and fails a code that is not a principal reason or is worded as another."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from pydantic import ValidationError

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.deterministic import deterministic_explanation
from expound.generators.grammar import candidate_grammars
from expound.generators.prompting import chat_facts
from expound.models.demo_schema import REASONS
from expound.models.manifest import SECOND_PERSON, ReasonEntry
from expound.models.registry import ModelRegistry
from expound.models.todos import todo_fields
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for
from tests.unit.test_texture import background

STAFF = (Audience.COMPLIANCE, Audience.ANALYST)


def texts_of(facts: DecisionFacts, per_style: int = 3) -> list[str]:
    rng = random.Random(7)
    drafted = [
        p.grammar.sample(rng) for p in candidate_grammars(facts, 4) for _ in range(per_style)
    ]
    return [*drafted, deterministic_explanation(facts)]


def test_a_reason_that_speaks_to_the_applicant_needs_its_third_person_form() -> None:
    with pytest.raises(ValidationError, match=r"reasons\[CHK01\]\.neutral_text: required.*'your'"):
        ReasonEntry(code="CHK01", text="Status of your account", features=["a"])
    with pytest.raises(ValidationError, match=r"reasons\[CHK01\]\.neutral_text: 'You'"):
        ReasonEntry(
            code="CHK01",
            text="Status of your account",
            neutral_text="You hold an account",
            features=["a"],
        )
    neutral = ReasonEntry(code="TRM02", text="Length of the loan term", features=["a"])
    assert neutral.third_person == "Length of the loan term"
    worded = ReasonEntry(
        code="CHK01",
        text="Status of your account",
        neutral_text="Status of the applicant's account",
        features=["a"],
    )
    assert worded.third_person == "Status of the applicant's account"


def test_every_demo_reason_has_reviewed_third_person_wording() -> None:
    for entry in REASONS:
        assert SECOND_PERSON.search(entry.third_person) is None, entry
        if SECOND_PERSON.search(entry.text):
            assert entry.neutral_text, entry.code
    spoken = [e.code for e in REASONS if SECOND_PERSON.search(e.text)]
    assert spoken == ["CHK01", "HIS03", "DEP14"]


def test_two_reasons_may_not_share_a_code(registry: ModelRegistry) -> None:
    manifest = registry.get(GBM).manifest.model_dump()
    manifest["reasons"][1]["code"] = manifest["reasons"][0]["code"]
    with pytest.raises(ValidationError, match="codes must be unique"):
        type(registry.get(GBM).manifest).model_validate(manifest)


def test_an_imported_manifest_asks_for_the_third_person_form() -> None:
    entry = ReasonEntry(
        code="R01",
        text="TODO: the reason as an adverse-action notice states it (x)",
        neutral_text="TODO: the same reason in the third person (x)",
        features=["x"],
    )
    found = todo_fields({"reasons": [entry.model_dump()]})
    assert found == ["reasons[R01].text", "reasons[R01].neutral_text"]


def test_no_compliance_or_analyst_text_speaks_to_the_applicant(registry: ModelRegistry) -> None:
    reasons_said = 0
    for audience in STAFF:
        for model_id in (GBM, LOGISTIC):
            for row in background(registry, model_id)[:12]:
                facts = facts_for(registry, model_id, row, audience)
                for text in texts_of(facts):
                    assert SECOND_PERSON.search(text) is None, text
                    verdict = verify(facts, text)
                    assert verdict.passed, (text, verdict.violations)
                    reasons_said += "CHK01" in text
    # The reasons that speak to the applicant were stated, in the third person.
    assert reasons_said > 0


def test_applicant_texts_and_notices_keep_the_applicants_wording(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant)
    assert any(r.code == "CHK01" for r in facts.reasons)
    assert "your checking account" in deterministic_explanation(facts)
    chk = next(r for r in facts.reasons if r.code == "CHK01")
    assert facts.reason_text(chk) == chk.text == "Status or balance of your checking account"


def test_the_compliance_chat_prompt_states_reasons_in_the_third_person(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.COMPLIANCE)
    prompt = str(chat_facts(facts))
    assert "CHK01: Status or balance of the applicant's checking account" in prompt
    assert "your checking account" not in prompt


def test_the_gate_reads_both_wordings_and_fails_a_wrong_code(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.COMPLIANCE)
    codes = [r.code for r in facts.reasons]
    assert "CHK01" in codes and len(codes) > 1
    other = next(r for r in facts.reasons if r.code != "CHK01")
    text = deterministic_explanation(facts)
    assert "CHK01: Status or balance of the applicant's checking account" in text
    assert verify(facts, text).passed, verify(facts, text).violations
    # The applicant's wording is the same reason, read as such (no WRONG_REASON), but
    # spoken to the reader: a compliance text says it in the third person.
    spoken = text.replace("the applicant's checking account", "your checking account")
    assert spoken != text
    assert {v.kind for v in verify(facts, spoken).violations} == {ViolationKind.WRONG_VOICE}
    applicant = dataclasses.replace(facts, audience=Audience.APPLICANT)
    assert verify(applicant, spoken).passed, verify(applicant, spoken).violations
    # A code that is not a principal reason of this decision.
    absent = next(e.code for e in facts.manifest.reasons if e.code not in codes)
    wrong = text.replace(f"{other.code}:", f"{absent}:", 1)
    assert ViolationKind.WRONG_REASON in {v.kind for v in verify(facts, wrong).violations}
    # Two principal reasons' codes swapped: each code carries the other's wording.
    swapped = text.replace("CHK01:", "@@:", 1).replace(f"{other.code}:", "CHK01:", 1)
    swapped = swapped.replace("@@:", f"{other.code}:", 1)
    assert swapped != text
    assert ViolationKind.WRONG_REASON in {v.kind for v in verify(facts, swapped).violations}
    # An approval has no principal reasons: any code named is wrong.
    approval = dataclasses.replace(facts, reasons=[])
    assert ViolationKind.WRONG_REASON in {
        v.kind for v in verify(approval, "No adverse action; CHK01 does not apply.").violations
    }
