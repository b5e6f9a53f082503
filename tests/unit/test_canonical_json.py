"""The fast canonical JSON writes what the RFC 8785 reference writes, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from expound.archive.records import canonical_json

EDGE_FLOATS = [
    0.0, -0.0, 1.0, -2.0, 0.5, 1e-4, 9.999e-5, 1e-5, 1.5e-5, 1e-6, 1e-7, 123e-20, 1e15,
    1e16, 1.5e16, 1e20, 1e21, 1e22, 2.0**53, 2.0**53 + 2, 5e-324, 1.7976931348623157e308,
    0.1, 1 / 3, -123.456, 4.35, 0.000123, 12345678901234567.0,
]  # fmt: skip
KEYS = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EDGE_FLOATS)
    | st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_any_json_value_is_written_as_the_reference_writes_it(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("number", EDGE_FLOATS + [-x for x in EDGE_FLOATS])
def test_every_number_form_matches_the_reference(number: float) -> None:
    value = {"b": [number, {"x": number}], "a": number}
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\ufb01": 2, "a": 3},  # UTF-16 order differs from code points
        {"s": "\x00jcs-number\x00", "n": 1e-7},  # a string spelling the placeholder
        {"k\x00": "nul in a key"},
        {"control": '\x01\x1f\b\t\n\f\r"\\\u2028\x7f'},
        [2**53 - 1, -(2**53) + 1],
    ],
)
def test_awkward_values_match_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{"n": float("nan")}, {"n": 2**60}, {1: "int key"}])
def test_what_the_reference_refuses_is_refused(value: Any) -> None:
    with pytest.raises(Exception) as ours:
        canonical_json(value)
    with pytest.raises(Exception) as reference:
        rfc8785.dumps(value)
    assert type(ours.value) is type(reference.value)


def test_a_real_record_body_matches_the_reference() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    for path in sorted(examples.glob("*.json")):
        value = json.loads(path.read_text())
        assert canonical_json(value) == rfc8785.dumps(value), path.name
