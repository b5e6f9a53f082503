"""``expound explain-batch`` types a CSV's cells by the model's feature schema, cell by cell,
against a real server on a loopback socket: one bad cell fails its own row, never its
column; a category spelled in digits stays a category; an unknown model is refused before
anything is sent; a caller that may not read the schema gets the cells typed by their look,
and a warning."""

from __future__ import annotations

import asyncio
import csv
import socket
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
import pytest

from expound.clients.batch import model_feature_types
from expound.clients.batch_results import read_results
from expound.clients.cells import typed_cell, typed_features
from expound.clients.cli import main
from expound.clients.client import ExplainClient
from expound.clients.ray_batch import csv_convert_options, csv_header
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from expound.wire import explain_request
from tests.conftest import GBM
from tests.support.model_dirs import copy_model, numbered_categories_model
from tests.support.security import Pki, write_policy, write_tokens
from tests.unit.test_batch_cli import records_by_decision


def cells(applicant: dict[str, Any]) -> dict[str, str]:
    """An applicant as a CSV writer spells it: every value text, booleans lower case."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in applicant.items()}


def write_csv(path: Path, rows: dict[str, dict[str, str]]) -> Path:
    """``rows`` (id -> cells) as a CSV with an ``id`` column first."""
    names = ["id", *next(iter(rows.values()))]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=names)
        writer.writeheader()
        for item_id, row in rows.items():
            writer.writerow({"id": item_id, **row})
    return path


async def run_cli(port: int, *args: str, security: tuple[str, ...] = ()) -> int:
    argv = ["--target", f"localhost:{port}", *security, "explain-batch", *args]
    return await asyncio.to_thread(main, argv)


def fields(results: pd.DataFrame, item_id: str) -> list[str]:
    return list(results.set_index("id").loc[item_id, "error_fields"])


async def test_one_bad_cell_fails_its_own_row_and_the_others_are_answered(
    service: RunningServer,
    stub: explain_pb2_grpc.ExplainServiceStub,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = {
        "a": cells(denied_applicant),
        "b": {**cells(approved_applicant), "duration_months": "lots"},
        "c": {**cells(denied_applicant), "has_telephone": ""},  # empty: null
        "d": {**cells(approved_applicant), "has_telephone": "TRUE"},
    }
    source, out = write_csv(tmp_path / "batch.csv", rows), tmp_path / "out"
    assert await run_cli(service.port, str(source), "--model", GBM, "--out", str(out)) == 0
    assert "2 answered, 2 failed (2 INVALID_ARGUMENT)" in capsys.readouterr().err
    results = read_results(out)
    assert list(results["id"]) == ["a", "b", "c", "d"]
    assert fields(results, "b") == ["features[duration_months]: must be a number (integer)"]
    assert fields(results, "c") == ["features[has_telephone]: must not be null"]
    # The answered rows were sent with the types of the applicants they spell: the same
    # decision and score as those applicants explained one by one.
    answered = results.set_index("id").loc[["a", "d"]]
    for item_id, applicant in (("a", denied_applicant), ("d", approved_applicant)):
        typed = {**applicant, "has_telephone": True} if item_id == "d" else applicant
        alone = await stub.Explain(explain_request(GBM, typed, what_if=True))
        assert answered.loc[item_id, "score"] == pytest.approx(alone.prediction.score)
        assert answered.loc[item_id, "decision"] == alone.prediction.decision
    assert await records_by_decision(stub) == {"a": 1, "d": 1}


async def test_a_category_spelled_in_digits_is_sent_as_text(
    settings: Settings,
    models_dir: Path,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "models"
    numbered_categories_model(models_dir, root, "housing-numbered", "housing")
    numbered = {"rent": "1", "own": "2", "free": "3"}
    rows = {
        f"r{n}": {**cells(denied_applicant), "housing": numbered[housing]}
        for n, housing in enumerate(["rent", "own", "free", "own"])
    }
    source, out = write_csv(tmp_path / "batch.csv", rows), tmp_path / "out"
    async with running_server(settings.model_copy(update={"model_dir": root})) as server:
        args = (str(source), "--model", "housing-numbered", "--out", str(out))
        assert await run_cli(server.port, *args) == 0
    assert "4 answered, 0 failed" in capsys.readouterr().err
    assert read_results(out)["error_code"].isna().all()


async def test_an_unknown_model_is_refused_before_anything_is_sent(
    service: RunningServer,
    stub: explain_pb2_grpc.ExplainServiceStub,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_csv(tmp_path / "batch.csv", {"a": cells(denied_applicant)})
    out = tmp_path / "out"
    assert await run_cli(service.port, str(source), "--model", "no-such", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model no-such: ") and "unknown model 'no-such'" in err, err
    assert err.count("\n") == 1
    assert not out.exists(), "no output claimed for a model the server does not know"
    page = await stub.ListRecords(pb.ListRecordsRequest(page_size=10))
    assert not page.records


async def test_an_unavailable_model_is_refused_with_its_reason(
    settings: Settings,
    models_dir: Path,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "models"
    broken = copy_model(models_dir, root, "no-artifact")
    (broken / "model.lgb.txt").unlink()
    source = write_csv(tmp_path / "batch.csv", {"a": cells(denied_applicant)})
    out = tmp_path / "out"
    async with running_server(settings.model_copy(update={"model_dir": root})) as server:
        args = (str(source), "--model", "no-artifact", "--out", str(out))
        assert await run_cli(server.port, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model no-artifact: unavailable on the server: "), err
    assert "cannot read artifact" in err and err.count("\n") == 1
    assert not out.exists()


async def test_a_caller_that_may_not_read_the_model_gets_cells_typed_by_their_look(
    settings: Settings,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The decider may explain but not read a model's schema (GetModel: PERMISSION_DENIED).
    pki = Pki(tmp_path / "pki")
    tokens = write_tokens(tmp_path / "tokens", ["decider"])
    secured = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tokens_file": tmp_path / "tokens",
            "policy_file": write_policy(tmp_path / "policy.toml", {"decider": ["decider"]}),
        }
    )
    rows = {
        "a": cells(denied_applicant),
        "b": {**cells(denied_applicant), "age_years": "old"},
        "c": {**cells(denied_applicant), "has_telephone": "True"},
    }
    source, out = write_csv(tmp_path / "batch.csv", rows), tmp_path / "out"
    security = ("--tls-ca", str(pki.ca_file), "--token", tokens["decider"])
    async with running_server(secured) as server:
        args = (str(source), "--model", GBM, "--out", str(out))
        assert await run_cli(server.port, *args, security=security) == 0
    err = capsys.readouterr().err
    assert f"warning: cannot read the feature types of model {GBM} (PERMISSION_DENIED" in err
    assert "2 answered, 1 failed (1 INVALID_ARGUMENT)" in err
    assert fields(read_results(out), "b") == ["features[age_years]: must be a number (integer)"]


MANIFEST_TYPES = {
    "term": "integer",
    "amount": "number",
    "phone": "bool",
    "band": "category",
}


@pytest.mark.parametrize(
    ("feature_type", "cell", "value"),
    [
        ("integer", "48", 48),
        ("integer", " 48 ", 48),
        ("integer", "48.0", 48.0),  # the server takes a whole float for an integer
        ("integer", "lots", "lots"),  # text stays text: the server names the field
        ("integer", "true", "true"),
        ("number", "2.5", 2.5),
        ("number", "-1e3", -1000.0),
        ("number", "nan", "nan"),  # not a number a model can take: refused as text
        ("number", "inf", "inf"),
        ("number", "-Infinity", "-Infinity"),
        ("number", "1_000", "1_000"),  # Python reads it, no CSV writer writes it
        ("bool", "true", True),
        ("bool", "FALSE", False),
        ("bool", "True", True),
        ("bool", "1", "1"),  # the server's booleans are true/false, nothing else
        ("bool", "yes", "yes"),
        ("category", "1", "1"),
        ("category", "own", "own"),
        ("category", "TRUE", "TRUE"),
        (None, "48", 48),  # no schema: typed by its look
        (None, "4.5", 4.5),
        (None, "false", False),
        (None, "own", "own"),
        (None, "nan", "nan"),
    ],
)
def test_a_cell_is_typed_by_its_feature(feature_type: str | None, cell: str, value: Any) -> None:
    typed = typed_cell(cell, feature_type)
    assert typed == value and type(typed) is type(value)


def test_only_text_cells_are_typed_and_unknown_features_pass_as_they_are() -> None:
    row = {
        "term": "12",
        "amount": np.float64(1500.5),  # a Parquet column's own type
        "phone": np.bool_(True),
        "band": np.int64(2),  # refused by the server as the file's producer typed it
        "extra": "12",  # not the model's: the server names it
        "missing": float("nan"),
        "none": None,
    }
    typed = typed_features(row, MANIFEST_TYPES)
    assert typed == {
        "term": 12,
        "amount": 1500.5,
        "phone": True,
        "band": 2,
        "extra": "12",
        "missing": None,
        "none": None,
    }
    none = type(None)
    assert [type(v) for v in typed.values()] == [int, float, bool, int, str, none, none]
    # Without a schema every text cell is typed by its look.
    assert typed_features({"extra": "12", "band": "own"}, None) == {"extra": 12, "band": "own"}


def test_the_ray_engine_reads_every_csv_cell_as_text_whatever_block_it_is_in(
    tmp_path: Path,
) -> None:
    # 200 rows in blocks of 1 KiB: the first blocks are all numbers, a late one is not.
    source = tmp_path / "rows.csv"
    lines = ["id,term,phone,band", *(f"r{n:03d},{12 + n % 24},true,{n % 3}" for n in range(200))]
    lines[190] = "r189,lots,,own"
    source.write_text("\n".join(lines) + "\n")
    names = csv_header(source)
    assert names == ["id", "term", "phone", "band"]
    # Streamed block by block, as Ray Data reads it (pyarrow's read_csv would look at the
    # whole file before it types a column; the stream types it by its first block).
    with pa_csv.open_csv(
        source,
        read_options=pa_csv.ReadOptions(block_size=1024),
        convert_options=csv_convert_options(names),
    ) as reader:
        table = reader.read_all()
    assert all(field.type == pa.string() for field in table.schema)
    rows = table.to_pylist()
    assert rows[0] == {"id": "r000", "term": "12", "phone": "true", "band": "0"}
    assert rows[189] == {"id": "r189", "term": "lots", "phone": None, "band": "own"}


def test_a_server_without_get_model_leaves_the_cells_typed_by_their_look(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A gRPC server that implements nothing: GetModel is UNIMPLEMENTED, as on a server
    # older than the RPC.
    bare = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = bare.add_insecure_port("127.0.0.1:0")
    bare.start()
    with ExplainClient(f"127.0.0.1:{port}", timeout=5) as client:
        try:
            assert model_feature_types(client.get_model, GBM) is None
        finally:
            bare.stop(None)
        # Any other failure is the call's: the batch would fail alike.
        with pytest.raises(grpc.RpcError) as caught:
            model_feature_types(client.get_model, GBM)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith(f"warning: cannot read the feature types of model {GBM} (UNIMPLEMENTED")
    assert err.count("\n") == 1


def test_a_server_that_cannot_be_reached_fails_the_run_before_it_claims_the_output(
    denied_applicant: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a port nobody listens on once this socket is gone
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    source = write_csv(tmp_path / "batch.csv", {"a": cells(denied_applicant)})
    out = tmp_path / "out"
    argv = ["--target", f"127.0.0.1:{port}", "--timeout", "5", "explain-batch", str(source)]
    assert main([*argv, "--model", GBM, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE: "), err
    assert "run again to resume" not in err, "there is nothing to resume"
    assert not out.exists()
