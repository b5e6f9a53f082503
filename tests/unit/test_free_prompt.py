"""The few-shot prompt of free drafting over completions (``free.v2``): one worked example
per audience, all of one real decision of the demo model, each passing the gate. A base
model writes in the voice of the example it is shown, so analyst and compliance prompts
hold no second person outside the decision's data; ``free.v1`` stays loadable by name."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.drafting import Drafter, DraftingConfig
from expound.generators.fake import FakeGenerator
from expound.generators.prompting import (
    FREE_TEMPLATE,
    free_facts,
    free_prompt,
    free_template,
    template,
)
from expound.models.manifest import SECOND_PERSON
from expound.models.registry import ModelRegistry
from expound.models.training import load_applicants
from expound.rankers.gate import ViolationKind, verify, verify_candidate
from expound.rankers.reading import clauses, stated_direction
from tests.conftest import GBM, LOGISTIC, ROOT
from tests.support.facts_util import facts_for

STAFF = (Audience.ANALYST, Audience.COMPLIANCE)
# free.v1 as it was released: records that name it must keep meaning this text.
FREE_V1_SHA256 = "7bb9196f82d82f78c78cfc17fdf165ed8fd93279a097c34246cad1a22d9f4049"
# The decision every example is written from (german-credit-gbm on this applicant).
EXAMPLE_APPLICANT = ROOT / "tests" / "fixtures" / "free_example_applicant.json"
# The only words the examples state a direction in: those the chat rules ask for.
DIRECTION_WORDS = ("raised the risk", "lowered the risk")


def _parts() -> dict[str, Any]:
    parts: dict[str, Any] = json.loads(free_template().text)
    return parts


def _example(audience: Audience) -> dict[str, Any]:
    example: dict[str, Any] = _parts()["example"][audience.value]
    return example


def _example_facts(registry: ModelRegistry, audience: Audience) -> DecisionFacts:
    row = json.loads(Path(EXAMPLE_APPLICANT).read_text())
    return facts_for(registry, GBM, row, audience, _example(audience)["data"]["question"])


def _split(prompt: str) -> tuple[str, dict[str, Any]]:
    """The prompt without its last data block (the decision's), and that block's data."""
    start, end = prompt.rindex("<data>\n"), prompt.rindex("\n</data>")
    data: dict[str, Any] = json.loads(prompt[start + len("<data>\n") : end])
    return prompt[:start] + prompt[end:], data


@pytest.fixture(params=list(Audience), ids=lambda a: a.value)
def audience(request: pytest.FixtureRequest) -> Audience:
    chosen: Audience = request.param
    return chosen


# -- the template ------------------------------------------------------------------------


def test_drafting_prompts_with_free_v2_and_free_v1_still_loads_unchanged(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    current = free_template()
    assert FREE_TEMPLATE == current.template_id == _parts()["id"] == "free.v2"
    v1 = template("free.v1")
    assert v1.template_id == "free.v1"
    assert v1.sha256 == hashlib.sha256(v1.text.encode()).hexdigest() == FREE_V1_SHA256
    assert v1.sha256 != current.sha256
    for audience in Audience:
        _, chosen = free_prompt(facts_for(registry, GBM, denied_applicant, audience))
        assert chosen == current


def test_each_audience_is_shown_its_own_example(
    registry: ModelRegistry, denied_applicant: dict[str, Any], audience: Audience
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, audience, "Why?")
    prompt, _ = free_prompt(facts)
    rest, data = _split(prompt)
    assert data == free_facts(facts)
    mine = _example(audience)
    assert f"Explanation: {mine['explanation']}\n" in rest
    example_block = rest[rest.index("<data>\n") + len("<data>\n") : rest.index("\n</data>")]
    assert json.loads(example_block) == mine["data"]
    assert mine["data"]["audience"] == audience.value
    for other in Audience:
        if other is not audience:
            assert _example(other)["explanation"] not in prompt
    assert prompt.endswith("</data>\nExplanation:")


@pytest.mark.parametrize("staff", STAFF, ids=lambda a: a.value)
@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_a_staff_prompt_speaks_of_the_applicant_only_in_the_third_person(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    staff: Audience,
    model_id: str,
) -> None:
    for row in (denied_applicant, approved_applicant):
        # The reader's question is their own words, quoted as data: it may say "you".
        facts = facts_for(registry, model_id, row, staff, "Why did you decline it?")
        prompt, _ = free_prompt(facts)
        rest, data = _split(prompt)
        assert SECOND_PERSON.search(rest) is None, rest
        assert "third person" in rest and "the applicant" in _example(staff)["explanation"]
        assert data.pop("question") == "Why did you decline it?"
        assert SECOND_PERSON.search(json.dumps(data)) is None, data
    # The applicant's prompt does speak to the reader: the check above can see it.
    applicant_prompt, _ = free_prompt(facts_for(registry, model_id, denied_applicant))
    assert SECOND_PERSON.search(_split(applicant_prompt)[0])


@pytest.mark.parametrize("staff", STAFF, ids=lambda a: a.value)
def test_the_staff_data_is_the_content_plan_in_the_neutral_wording(
    registry: ModelRegistry, denied_applicant: dict[str, Any], staff: Audience
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, staff)
    assert facts.plan is not None
    data = free_facts(facts)
    factors = cast(list[dict[str, str]], data["factors"])
    planned = [facts.factors[p.feature] for p in facts.plan.factors]
    # The gate wants every factor of the plan named in a staff text: the data lists them.
    assert [f["factor"] for f in factors] == [f.description for f in planned]
    if staff is Audience.ANALYST:
        assert data["score"] == f"{facts.prediction.score:.3f}"
        contributions = [float(f["contribution"]) for f in factors]
        assert contributions == [round(abs(f.contribution), 3) for f in planned]
        assert "principal_reasons" not in data
    else:
        assert "score" not in data and all("contribution" not in f for f in factors)
        reasons = data["principal_reasons"]
        assert reasons == [f"{r.code}: {r.third_person}" for r in facts.reasons]
        assert any(r.text != r.third_person for r in facts.reasons)


# -- the examples ------------------------------------------------------------------------


def test_each_example_is_the_data_of_a_real_decision_and_passes_the_gate(
    registry: ModelRegistry, audience: Audience
) -> None:
    facts = _example_facts(registry, audience)
    example = _example(audience)
    # The example's data is what the service gives the model for that decision.
    assert example["data"] == free_facts(facts)
    text = example["explanation"]
    verdict = verify(facts, text)
    assert verdict.passed, verdict.violations
    assert verify_candidate(facts, text).passed
    # Every listed factor is named (the applicant's, as one of the principal reasons).
    features = {f.description: f.feature for f in facts.factors.values()}
    listed = {features[f["factor"]] for f in example["data"]["factors"]}
    assert listed <= set(verdict.mentioned)
    assert (SECOND_PERSON.search(text) is not None) is (audience is Audience.APPLICANT)


def test_each_example_states_directions_only_in_the_words_the_gate_reads(
    registry: ModelRegistry, audience: Audience
) -> None:
    facts = _example_facts(registry, audience)
    text = _example(audience)["explanation"]
    lowered = text.lower()
    for start, end in clauses(lowered):
        clause = lowered[start:end]
        direction = stated_direction(clause)
        if direction is not None:
            assert clause[direction[1] :].startswith(DIRECTION_WORDS), clause
    # Each direction stated is read and checked: turned round, it fails the gate.
    swap = {"raised the risk": "lowered the risk", "lowered the risk": "raised the risk"}
    stated = [(m.start(), m.group(0)) for m in re.finditer("|".join(swap), text)]
    assert len(stated) >= 3
    for start, words in stated:
        flipped = text[:start] + swap[words] + text[start + len(words) :]
        kinds = {v.kind for v in verify(facts, flipped).violations}
        assert ViolationKind.WRONG_DIRECTION in kinds, flipped


def test_an_example_in_the_wrong_voice_would_fail_the_gate(registry: ModelRegistry) -> None:
    """What the examples guard against: the applicant's wording in a staff text."""
    facts = _example_facts(registry, Audience.COMPLIANCE)
    text = _example(Audience.COMPLIANCE)["explanation"]
    spoken = text.replace("the applicant's checking account", "your checking account")
    assert spoken != text
    assert {v.kind for v in verify(facts, spoken).violations} == {ViolationKind.WRONG_VOICE}


# -- what a model that copies an example writes ------------------------------------------
# Each example follows one construction, sentence by sentence; written out here, a
# construction filled with another decision's data is what a base model that copies the
# example closely writes for that decision, and that must pass the gate too.

OUTCOME = {"decline": "declined", "approve": "approved"}


def _listed(items: list[str]) -> str:
    """Items joined by semicolons, the last after "and" (one clause each)."""
    return "; ".join([*items[:-1], f"and {items[-1]}"] if len(items) > 1 else items)


def _applicant_text(data: dict[str, Any]) -> str:
    first, *others = data["factors"]
    text = (
        f"Your application was {OUTCOME[data['decision']]}. The main reason was the "
        f"{first['factor']} ({first['value']}), which {first['effect']}."
    )
    if others:
        named = [f"the {f['factor']} ({f['value']}) {f['effect']}" for f in others]
        text += f" Beyond that, {_listed(named)}."
    return text


def _analyst_text(data: dict[str, Any]) -> str:
    sentences = [
        f"The application was {OUTCOME[data['decision']]}, with a score of {data['score']} "
        f"against a threshold of {data['threshold']}."
    ]
    for position, f in enumerate(data["factors"]):
        lead = "Among the applicant's factors, the" if position == 0 else "The"
        sentences.append(
            f"{lead} {f['factor']} ({f['value']}) {f['effect']}, "
            f"with a contribution of {f['contribution']}."
        )
    return " ".join(sentences)


def _compliance_text(data: dict[str, Any]) -> str:
    sentences = [f"The application was {OUTCOME[data['decision']]}."]
    if "principal_reasons" in data:
        sentences.append(
            f"The principal reasons, in order, are {_listed(data['principal_reasons'])}."
        )
    named = [f"the {f['factor']} ({f['value']}) {f['effect']}" for f in data["factors"]]
    sentences.append(f"By size of contribution, {_listed(named)}.")
    return " ".join(sentences)


CONSTRUCTIONS = {
    Audience.APPLICANT: _applicant_text,
    Audience.ANALYST: _analyst_text,
    Audience.COMPLIANCE: _compliance_text,
}


def test_each_example_is_its_construction_on_its_own_data(audience: Audience) -> None:
    example = _example(audience)
    assert CONSTRUCTIONS[audience](example["data"]) == example["explanation"]


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_an_example_copied_for_another_decision_passes_the_gate(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    audience: Audience,
    model_id: str,
) -> None:
    rows, _ = load_applicants(ROOT / "data" / "german_credit.csv")
    # Every 10th applicant of the data set and the two shipped examples: both outcomes.
    decisions = [facts_for(registry, model_id, row, audience) for row in rows[::10]]
    decisions += [facts_for(registry, model_id, denied_applicant, audience)]
    decisions += [facts_for(registry, model_id, approved_applicant, audience)]
    assert {f.prediction.adverse for f in decisions} == {True, False}
    for facts in decisions:
        text = CONSTRUCTIONS[audience](free_facts(facts))
        verdict = verify(facts, text)
        assert verdict.passed, (text, verdict.violations)


# -- the record --------------------------------------------------------------------------


async def test_free_drafting_over_completions_sends_free_v2_and_records_it(
    registry: ModelRegistry, denied_applicant: dict[str, Any], audience: Audience
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, audience, "Why?")
    generator = FakeGenerator(["text one", "text two"])
    config = DraftingConfig(
        mode="free", decoding="grammar", max_tokens=200, temperature=0.8, timeout_s=5.0
    )
    drafting = await Drafter(generator, config).draft(facts, 2, 11, None)
    assert [r.prompt for r in generator.requests] == [free_prompt(facts)[0]]
    assert all(r.grammar is None and not r.messages for r in generator.requests)
    record = drafting.record
    assert record.template_id == "free.v2"
    assert record.template_sha256 == free_template().sha256 != FREE_V1_SHA256
    assert "api" not in record.sampling
