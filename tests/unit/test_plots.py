"""Plots of real decisions from a real server: the figures hold the features and reasons they
should, the PNGs are images of the right size with something drawn, and ``expound plots``
writes them from the archive and from a batch result."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from expound.clients.aio import AsyncExplainClient
from expound.clients.batch_results import PartWriter, result_row
from expound.clients.cli import main
from expound.clients.frames import responses_to_frame
from expound.plots import (
    COHORT_PLOTS,
    cohort_figures,
    cohort_pngs,
    rates_over_time,
    reason_frequencies,
    select_cohort,
    waterfall_figure,
    waterfall_png,
)
from expound.server.app import RunningServer
from expound.v1 import explain_pb2 as pb
from tests.conftest import GBM, LOGISTIC


def texts(figure: Figure) -> str:
    return " ".join(t.get_text() for t in figure.findobj(matplotlib.text.Text))


def image(png: bytes) -> np.ndarray[Any, Any]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def assert_drawn(png: bytes, min_width: int = 300, min_height: int = 150) -> None:
    pixels = image(png)
    height, width, _ = pixels.shape
    assert width >= min_width and height >= min_height, (width, height)
    ink = (pixels < 200).any(axis=2).mean()
    assert 0.01 < ink < 0.9, ink  # drawn on, and not a filled rectangle


@pytest.fixture
async def cohort(
    service: RunningServer, denied_applicant: dict[str, Any], approved_applicant: dict[str, Any]
) -> AsyncIterator[tuple[RunningServer, list[pb.ExplainResponse]]]:
    async with AsyncExplainClient(f"127.0.0.1:{service.port}") as client:
        responses = []
        for i in range(12):
            features = dict(denied_applicant if i % 3 else approved_applicant)
            features.update(credit_amount=600.0 + 700.0 * i, duration_months=6 + 3 * i)
            responses.append(await client.explain(GBM, features, decision_id=f"c-{i}"))
        yield service, responses


def top_features(response: pb.ExplainResponse, count: int) -> list[str]:
    return [a.feature for a in sorted(response.attributions.items, key=lambda a: a.rank)][:count]


async def test_a_waterfall_names_the_decisions_top_features(
    cohort: tuple[RunningServer, list[pb.ExplainResponse]],
) -> None:
    _, responses = cohort
    denied = next(r for r in responses if r.prediction.adverse)
    figure = waterfall_figure(denied, max_display=6)
    drawn = texts(figure)
    for feature in top_features(denied, 5):
        assert feature in drawn
    assert denied.prediction.decision in drawn
    assert_drawn(waterfall_png(denied))


async def test_cohort_plots_show_its_features_reasons_and_rates(
    cohort: tuple[RunningServer, list[pb.ExplainResponse]],
) -> None:
    _, responses = cohort
    frame = responses_to_frame(responses)
    figures = cohort_figures(frame, max_display=8)
    assert set(figures) == set(COHORT_PLOTS)
    mean_abs = frame.filter(like="shap_").abs().mean().sort_values(ascending=False)
    strongest = [name.removeprefix("shap_") for name in mean_abs.index[:5]]
    for name in ("beeswarm", "mean_abs_shap"):
        for feature in strongest:
            assert feature in texts(figures[name]), (name, feature)
    for code in reason_frequencies(frame).index:
        assert code in texts(figures["reason_codes"])
    assert "fallback rate" in texts(figures["rates"])
    for png in cohort_pngs(frame).values():
        assert_drawn(png)


async def test_reason_frequencies_count_each_decision_citing_a_code(
    cohort: tuple[RunningServer, list[pb.ExplainResponse]],
) -> None:
    _, responses = cohort
    counts = reason_frequencies(responses_to_frame(responses))
    expected: dict[str, int] = {}
    for response in responses:
        for code in {r.code for r in response.principal_reasons}:
            expected[code] = expected.get(code, 0) + 1
    assert counts.to_dict() == expected
    assert list(counts) == sorted(counts, reverse=True)


def test_rates_over_time_per_bucket() -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(
                [start + timedelta(days=d, hours=h) for d in (0, 0, 0, 3, 3) for h in [1]],
                utc=True,
            ),
            "fallback": [True, False, False, True, True],
            "drafted": [4, 4, 0, 0, 0],
            "rejected": [1, 2, 0, 0, 0],
        }
    )
    rates = rates_over_time(frame)
    assert list(rates["decisions"]) == [3, 2]
    assert list(rates["fallback_rate"]) == pytest.approx([1 / 3, 1.0])
    assert rates["gate_rejection_rate"].iloc[0] == pytest.approx(3 / 8)
    assert np.isnan(rates["gate_rejection_rate"].iloc[1])  # nothing drafted: no rate


async def test_a_cohort_is_one_model_within_a_time_range(
    cohort: tuple[RunningServer, list[pb.ExplainResponse]],
    denied_applicant: dict[str, Any],
) -> None:
    service, responses = cohort
    async with AsyncExplainClient(f"127.0.0.1:{service.port}") as client:
        other = await client.explain(LOGISTIC, denied_applicant)
    frame = responses_to_frame([*responses, other])
    with pytest.raises(ValueError, match="one model id at a time"):
        cohort_figures(frame)
    middle = frame["created_at"].iloc[6].to_pydatetime()
    late = select_cohort(frame, GBM, since=middle)
    assert list(late["decision_id"]) == [f"c-{i}" for i in range(6, 12)]
    assert list(select_cohort(frame, GBM, until=middle)["decision_id"]) == [
        f"c-{i}" for i in range(6)
    ]
    with pytest.raises(ValueError, match="timezone"):
        select_cohort(frame, GBM, since=datetime(2026, 1, 1))


async def test_expound_plots_writes_pngs_from_the_archive_and_from_a_batch(
    cohort: tuple[RunningServer, list[pb.ExplainResponse]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service, responses = cohort
    target = ["--target", f"127.0.0.1:{service.port}"]
    waterfall = tmp_path / "one.png"
    argv = [*target, "plots", "waterfall", responses[1].record_id, "--out", str(waterfall)]
    assert await asyncio.to_thread(main, argv) == 0
    assert_drawn(waterfall.read_bytes())

    archive_dir = tmp_path / "archive-plots"
    argv = [*target, "plots", "cohort", "--model", GBM, "--out", str(archive_dir)]
    assert await asyncio.to_thread(main, argv) == 0
    assert sorted(p.stem for p in archive_dir.glob("*.png")) == sorted(COHORT_PLOTS)
    for png in archive_dir.glob("*.png"):
        assert_drawn(png.read_bytes())

    results = tmp_path / "results"
    writer = PartWriter(results, flush_rows=100, flush_seconds=60)
    for i, response in enumerate(responses):
        writer.add(result_row(pb.BatchResult(item_id=str(i), response=response)))
    writer.flush()
    batch_dir = tmp_path / "batch-plots"
    argv = ["plots", "cohort", "--model", GBM, "--batch", str(results), "--out", str(batch_dir)]
    assert await asyncio.to_thread(main, ["--target", "127.0.0.1:1", *argv]) == 0
    assert sorted(p.stem for p in batch_dir.glob("*.png")) == sorted(COHORT_PLOTS)
    # The same decisions make the same reason-code image from either source.
    assert (
        image((batch_dir / "reason_codes.png").read_bytes()).shape
        == image((archive_dir / "reason_codes.png").read_bytes()).shape
    )

    empty = [*argv[:-1], str(tmp_path / "none"), "--since", "2999-01-01T00:00:00Z"]
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["--target", "127.0.0.1:1", *empty]) == 1
    assert "no decisions" in capsys.readouterr().out
    nothing = ["plots", "cohort", "--model", GBM, "--batch", str(tmp_path / "no-results")]
    assert await asyncio.to_thread(main, [*nothing, "--out", str(tmp_path / "none")]) == 1
    assert "no decisions" in capsys.readouterr().out


async def test_waterfalls_drawn_on_many_threads_are_each_their_own(
    cohort: tuple[RunningServer, list[pb.ExplainResponse]],
) -> None:
    # The web face renders on several threads; shap draws on pyplot's global figure.
    _, responses = cohort
    chosen = [responses[1], responses[3], responses[0], responses[2]]
    alone = [waterfall_png(r) for r in chosen]
    together = await asyncio.gather(*(asyncio.to_thread(waterfall_png, r) for r in chosen * 3))
    assert len(set(alone)) == len(chosen)
    assert list(together) == alone * 3
