"""DataFrames and shap.Explanation objects from answers, archived records and batch results,
from a real server; shap's own plots draw them (matplotlib's Agg backend)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap

from expound.clients.aio import AsyncExplainClient
from expound.clients.batch_results import PartWriter, read_frame, result_row
from expound.clients.client import ExplainClient
from expound.clients.frames import (
    ATTRIBUTION_PREFIX,
    VALUE_PREFIX,
    feature_names,
    records_to_frame,
    responses_to_frame,
    to_explanation,
)
from expound.clients.notebook import explain_frame
from expound.server.app import RunningServer
from expound.v1 import explain_pb2 as pb
from tests.conftest import GBM, LOGISTIC


def applicants(
    denied: dict[str, Any], approved: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    return [
        dict(denied if i % 2 else approved, credit_amount=800.0 + 900.0 * i) for i in range(count)
    ]


@pytest.fixture
async def answered(
    service: RunningServer, denied_applicant: dict[str, Any], approved_applicant: dict[str, Any]
) -> AsyncIterator[tuple[AsyncExplainClient, list[pb.ExplainResponse]]]:
    async with AsyncExplainClient(f"127.0.0.1:{service.port}") as client:
        responses = [
            await client.explain(GBM, features, decision_id=f"d-{i}")
            for i, features in enumerate(applicants(denied_applicant, approved_applicant, 8))
        ]
        yield client, responses


async def test_one_row_per_decision_with_a_typed_column_per_attribution(
    answered: tuple[AsyncExplainClient, list[pb.ExplainResponse]],
) -> None:
    _, responses = answered
    frame = responses_to_frame(responses)
    assert len(frame) == 8
    assert list(frame["decision_id"]) == [f"d-{i}" for i in range(8)]
    assert list(frame["record_id"]) == [r.record_id for r in responses]
    assert set(frame["decision"]) == {"approve", "decline"}
    assert frame["archived"].all() and not frame["fallback"].any()
    assert isinstance(frame["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(frame["created_at"].dt.tz) == "UTC"
    features = feature_names(frame)
    assert set(features) == {a.feature for a in responses[0].attributions.items}
    for name in features:
        assert frame[ATTRIBUTION_PREFIX + name].dtype == np.float64
    # Each cell is that response's contribution, and the row adds up to the model output.
    for row, response in zip(frame.itertuples(index=False), responses, strict=True):
        for item in response.attributions.items:
            assert getattr(row, ATTRIBUTION_PREFIX + item.feature) == item.contribution
        total = sum(getattr(row, ATTRIBUTION_PREFIX + f) for f in features) + row.base_value
        assert total == pytest.approx(row.model_output, abs=1e-6)
        assert list(row.reason_codes) == [r.code for r in response.principal_reasons]
        # Analysts read the reasons in the third person.
        assert list(row.reasons) == [r.neutral_text for r in response.principal_reasons]
        assert row.selected_text == response.selected.text
    assert frame[VALUE_PREFIX + "credit_amount"].tolist() == [800.0 + 900.0 * i for i in range(8)]


async def test_archived_records_and_batch_results_give_the_same_frame(
    answered: tuple[AsyncExplainClient, list[pb.ExplainResponse]], tmp_path: Path
) -> None:
    client, responses = answered
    records = [r async for r in client.iter_records(model_id=GBM)]
    from_records = records_to_frame(records).sort_values("decision_id").reset_index(drop=True)
    writer = PartWriter(tmp_path / "out", flush_rows=3, flush_seconds=60)
    for i, response in enumerate(responses):
        writer.add(result_row(pb.BatchResult(item_id=f"item-{i}", response=response)))
    writer.flush()
    from_batch = read_frame(tmp_path / "out").sort_values("decision_id").reset_index(drop=True)
    expected = responses_to_frame(responses)
    columns = [c for c in expected.columns if c.startswith((ATTRIBUTION_PREFIX, VALUE_PREFIX))]
    columns += ["record_id", "decision", "score", "base_value", "created_at"]
    for other in (from_records, from_batch):
        pd.testing.assert_frame_equal(other[columns], expected[columns], check_like=True)
    assert list(from_batch["id"]) == [f"item-{i}" for i in range(8)]


def figure_texts(figure: Any) -> str:
    return " ".join(t.get_text() for t in figure.findobj(matplotlib.text.Text))


async def test_shap_plots_draw_the_explanation(
    answered: tuple[AsyncExplainClient, list[pb.ExplainResponse]],
) -> None:
    _, responses = answered
    explanation = to_explanation(responses)
    assert explanation.values.shape == (8, len(explanation.feature_names))
    assert explanation.base_values.shape == (8,)
    top = max(responses[1].attributions.items, key=lambda a: abs(a.contribution)).feature
    column = explanation.feature_names.index(top)
    assert explanation.values[1, column] == pytest.approx(
        next(a.contribution for a in responses[1].attributions.items if a.feature == top)
    )
    for draw in (
        lambda: shap.plots.waterfall(explanation[1], show=False),
        lambda: shap.plots.beeswarm(explanation, show=False),
        lambda: shap.plots.bar(explanation, show=False),
    ):
        plt.close("all")
        draw()
        figure = plt.gcf()
        assert top in figure_texts(figure)
        figure.canvas.draw()
        pixels = np.asarray(figure.canvas.buffer_rgba())
        assert (pixels[..., :3] < 250).any()  # something drawn, not a blank canvas
    plt.close("all")


async def test_an_explanation_never_mixes_models(
    answered: tuple[AsyncExplainClient, list[pb.ExplainResponse]],
    denied_applicant: dict[str, Any],
) -> None:
    client, responses = answered
    other = await client.explain(LOGISTIC, denied_applicant)
    with pytest.raises(ValueError, match="one model id at a time"):
        to_explanation([*responses, other])
    with pytest.raises(ValueError, match="no decisions"):
        to_explanation([])


async def test_explain_frame_answers_a_frame_in_order_and_a_rerun_replays_its_records(
    service: RunningServer, denied_applicant: dict[str, Any], approved_applicant: dict[str, Any]
) -> None:
    table = pd.DataFrame(applicants(denied_applicant, approved_applicant, 6))
    table.index = [f"app-{i}" for i in (5, 3, 1, 0, 2, 4)]
    broken = table.copy()
    broken.loc["app-3", "savings"] = "a_fortune"  # not a category: refused; the rest go on

    def run(frame: pd.DataFrame, **options: Any) -> pd.DataFrame:
        with ExplainClient(f"127.0.0.1:{service.port}") as client:
            return explain_frame(client, GBM, frame, progress=False, **options)

    first = await asyncio.to_thread(run, table)
    again = await asyncio.to_thread(run, table)
    what_if = await asyncio.to_thread(run, broken, what_if=True, audience="analyst")
    assert list(first["id"]) == list(table.index)
    assert list(first["decision_id"]) == list(table.index)
    assert first["archived"].all() and first["record_id"].notna().all()
    # The same frame again: the same decisions, replayed from the archive, not added.
    assert list(again["record_id"]) == list(first["record_id"])
    assert not what_if["archived"].any() and what_if["record_id"].isna().all()
    failed = what_if.set_index("id").loc["app-3"]
    assert failed["error_code"] == "INVALID_ARGUMENT" and pd.isna(failed["score"])
    answered = what_if[what_if["id"] != "app-3"]
    assert list(answered["score"]) == list(first[first["id"] != "app-3"]["score"])
    with pytest.raises(ValueError, match="audience"):
        await asyncio.to_thread(run, table, audience="regulator")


async def test_explain_frame_fails_only_the_row_of_a_bad_cell_in_a_column_of_numbers(
    service: RunningServer, denied_applicant: dict[str, Any], approved_applicant: dict[str, Any]
) -> None:
    # A word among the numbers of a column (pandas keeps it as objects): the frame's
    # Parquet file could not be written, and pyarrow's ArrowTypeError ended the call.
    table = pd.DataFrame(applicants(denied_applicant, approved_applicant, 4))
    table.index = [f"app-{i}" for i in range(4)]
    messy = table.astype({"duration_months": object, "credit_amount": object})
    messy.loc["app-1", "duration_months"] = "lots"
    messy.loc["app-2", "credit_amount"] = "1200.5"  # a number as text: typed by the schema

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        with ExplainClient(f"127.0.0.1:{service.port}") as client:
            return explain_frame(client, GBM, frame, progress=False, what_if=True)

    answers = (await asyncio.to_thread(run, messy)).set_index("id")
    assert answers.loc["app-1", "error_code"] == "INVALID_ARGUMENT"
    (field,) = answers.loc["app-1", "error_fields"]
    assert field.startswith("features[duration_months]")
    assert answers.drop(index="app-1")["error_code"].isna().all()
    assert answers.loc["app-2", "value_credit_amount"] == 1200.5
    assert answers.loc["app-0", "value_duration_months"] == table.loc["app-0", "duration_months"]
