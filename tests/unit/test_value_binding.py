"""Two factors' values cannot trade places in a text: a manifest that words two features'
values alike is refused, naming the field, and the gate binds each stated value to the
factor named next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.facts import DecisionFacts
from expound.models.manifest import ModelManifest
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM
from tests.support.facts_util import facts_for
from tests.support.model_dirs import copy_model, read_manifest


def feature(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in manifest["features"] if f["name"] == name)
    return found


def test_a_category_worded_as_another_features_value_is_refused(models_dir: Path) -> None:
    manifest = read_manifest(models_dir / GBM)
    ModelManifest.model_validate(manifest)  # the demo words its values apart
    feature(manifest, "other_debtors")["category_descriptions"]["none"] = "None"
    with pytest.raises(ValidationError) as refused:
        ModelManifest.model_validate(manifest)
    message = str(refused.value)
    assert (
        "features[other_debtors].category_descriptions[none]: 'None' also names "
        "other_installment_plans's value 'none'"
    ) in message
    # A category with no description is said by its name: the same rule holds.
    del feature(manifest, "other_debtors")["category_descriptions"]["none"]
    with pytest.raises(ValidationError, match=r"features\[other_debtors\]\.categories\[none\]"):
        ModelManifest.model_validate(manifest)


def test_a_value_label_worded_as_another_features_value_is_refused(models_dir: Path) -> None:
    manifest = read_manifest(models_dir / GBM)
    employment = feature(manifest, "employment_since")["category_descriptions"]
    feature(manifest, "residence_since")["value_labels"]["4"] = employment["7_years_or_more"]
    with pytest.raises(
        ValidationError,
        match=r"features\[residence_since\]\.value_labels\[4\]: 'seven years or more' also names "
        r"employment_since's value '7_years_or_more'",
    ):
        ModelManifest.model_validate(manifest)


def test_the_registry_refuses_the_directory_and_names_the_field(
    models_dir: Path, tmp_path: Path
) -> None:
    def alike(manifest: dict[str, Any]) -> None:
        feature(manifest, "other_installment_plans")["category_descriptions"]["none"] = "neither"

    copy_model(models_dir, tmp_path, "alike", change=alike)
    registry = ModelRegistry.from_directory(tmp_path, build_explainer)
    [unavailable] = registry.unavailable()
    assert "features[other_installment_plans].category_descriptions[none]: 'neither'" in (
        unavailable.reason
    )


@pytest.fixture
def facts(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    applicant = {**denied_applicant, "other_debtors": "none", "other_installment_plans": "bank"}
    return facts_for(registry, GBM, applicant, Audience.ANALYST)


def wrong_values(facts: DecisionFacts, text: str) -> list[str]:
    return [
        text[v.start : v.end].lower()
        for v in verify(facts, text).violations
        if v.kind is ViolationKind.WRONG_VALUE
    ]


def test_two_factors_values_swapped_fail_and_in_place_pass(facts: DecisionFacts) -> None:
    debtors, plans = facts.factors["other_debtors"], facts.factors["other_installment_plans"]
    assert (debtors.value_text, plans.value_text) == ("neither", "with a bank")
    right = "The co-applicant or guarantor on the loan ({}); the other instalment plans ({})."
    assert wrong_values(facts, right.format("neither", "with a bank")) == []
    assert wrong_values(facts, right.format("with a bank", "neither")) == [
        "with a bank",
        "neither",
    ]
    # In one clause too, and a value said before its factor binds to the factor after it.
    one = "The other instalment plans (neither) and the co-applicant or guarantor (with a bank)."
    assert wrong_values(facts, one) == ["neither", "with a bank"]
    # A value binds to the factor closest to it, before or after.
    closer = "The other instalment plans, then with a bank the co-applicant or guarantor."
    assert wrong_values(facts, closer) == ["with a bank"]
    before = "Neither is the co-applicant or guarantor on the loan."
    assert wrong_values(facts, before) == []
    assert wrong_values(facts, "With a bank is the co-applicant or guarantor on the loan.") == [
        "with a bank"
    ]


def test_a_value_that_names_its_factor_or_a_reason_group_binds_to_it(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant)
    assert facts.factors["checking_account"].value_text.startswith("overdrawn")
    # "no checking account" names its own feature wherever it stands.
    approved = {**denied_applicant, "checking_account": "no_account"}
    other = facts_for(registry, GBM, approved)
    assert (
        wrong_values(other, "Having no checking account helped, unlike your credit history.") == []
    )
    # A reason of two features names the group: either's value may follow it.
    employment = facts.factors["employment_since"].value_text
    text = f"Length or type of employment ({employment}) counted against you."
    assert wrong_values(facts, text) == []
