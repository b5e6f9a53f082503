"""The typed Parquet export, read back with pyarrow: its types, its values against the
records, and its proofs, which still verify offline (and fail once a byte is changed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expound.archive.checkpoint import load_private_key, public_key_pem
from expound.clients.bundles import BundleInvalid, verify_bundle
from expound.clients.cli import main
from expound.clients.columns import ATTRIBUTION, CANDIDATE, REASON
from expound.clients.export import bundle_from_row
from expound.server.app import RunningServer
from expound.settings import Settings
from tests.conftest import GBM, LOGISTIC


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
async def exported(
    service: RunningServer,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    settings: Settings,
    tmp_path: Path,
) -> tuple[pa.Table, Path, Path, list[str]]:
    target = ["--target", f"127.0.0.1:{service.port}"]
    decisions = []
    for n, (model, applicant) in enumerate(
        [(GBM, denied_applicant), (GBM, approved_applicant), (LOGISTIC, denied_applicant)]
    ):
        path = tmp_path / f"applicant-{n}.json"
        path.write_text(json.dumps(applicant))
        decision_id = f"loan-{n}"
        args = ["explain", "--model", model, "--applicant", str(path)]
        assert await cli(*target, *args, "--decision-id", decision_id) == 0
        decisions.append(decision_id)
    out = tmp_path / "export.parquet"
    assert await cli(*target, "records", "export", "--format", "parquet", "--out", str(out)) == 0
    pem = tmp_path / "pub.pem"
    pem.write_bytes(public_key_pem(load_private_key(settings.signing_key_path)))
    return pq.read_table(out), out, pem, decisions


async def test_the_export_is_typed(exported: tuple[pa.Table, Path, Path, list[str]]) -> None:
    table, _, _, _ = exported
    schema = table.schema
    utc = pa.timestamp("us", tz="UTC")
    assert schema.field("created_at").type == utc
    assert schema.field("retain_until").type == utc
    assert schema.field("score").type == pa.float64()
    assert schema.field("base_value").type == pa.float64()
    assert schema.field("decision").type == pa.string()
    assert schema.field("adverse").type == pa.bool_()
    assert schema.field("legal_hold").type == pa.bool_()
    assert schema.field("leaf_index").type == pa.int64()
    assert schema.field("principal_reasons").type == pa.list_(REASON)
    assert schema.field("candidates").type == pa.list_(CANDIDATE)
    assert schema.field("attributions").type == pa.list_(ATTRIBUTION)
    assert schema.field("reason_codes").type == pa.list_(pa.string())
    assert pa.types.is_struct(schema.field("checkpoint").type)
    shap_columns = [name for name in schema.names if name.startswith("shap_")]
    assert "shap_credit_amount" in shap_columns and "shap_duration_months" in shap_columns
    for name in shap_columns:
        assert schema.field(name).type == pa.float64(), name


async def test_the_export_holds_each_records_values_oldest_first(
    exported: tuple[pa.Table, Path, Path, list[str]],
) -> None:
    table, _, _, decisions = exported
    rows = table.to_pylist()
    assert [row["decision_id"] for row in rows] == decisions
    assert [row["leaf_index"] for row in rows] == [0, 1, 2]
    assert [row["model_id"] for row in rows] == [GBM, GBM, LOGISTIC]
    for row in rows:
        record = json.loads(row["record"])
        response = record["response"]
        assert row["decision"] == response["prediction"]["decision"]
        assert row["score"] == response["prediction"]["score"]
        assert row["created_at"].tzinfo is not None
        assert row["retain_until"] > row["created_at"]
        contributions = {a["feature"]: a["contribution"] for a in row["attributions"]}
        for feature, contribution in contributions.items():
            assert row[f"shap_{feature}"] == contribution
        total = sum(contributions.values()) + row["base_value"]
        assert total == pytest.approx(row["model_output"], abs=1e-6)
        assert [r["code"] for r in row["principal_reasons"]] == row["reason_codes"]
        # Both wordings, as the record holds them; the frame's reasons are the third person's.
        archived = response["principal_reasons"]
        assert [(r["text"], r["neutral_text"]) for r in row["principal_reasons"]] == [
            (r["text"], r["neutral_text"]) for r in archived
        ]
        assert row["reasons"] == [r["neutral_text"] for r in archived]
        assert row["candidates"][0]["text"] == row["selected_text"]
    # Each model's features are its own: another model's columns are null, not zero.
    gbm_only = {a["feature"] for a in rows[0]["attributions"]} - {
        a["feature"] for a in rows[2]["attributions"]
    }
    for feature in gbm_only:
        assert rows[2][f"shap_{feature}"] is None


async def test_the_export_verifies_offline_and_a_changed_byte_fails(
    exported: tuple[pa.Table, Path, Path, list[str]], tmp_path: Path
) -> None:
    table, out, pem, _ = exported
    assert await cli("archive", "verify", str(out), "--public-key", str(pem)) == 0
    for row in table.to_pylist():
        assert verify_bundle(bundle_from_row(row), pem.read_bytes()).record_id == row["record_id"]
    tampered_rows = table.to_pylist()
    tampered_rows[1]["record"] += " "  # one byte more: the leaf hash no longer matches
    tampered = tmp_path / "tampered.parquet"
    pq.write_table(pa.Table.from_pylist(tampered_rows, schema=table.schema), tampered)
    assert await cli("archive", "verify", str(tampered), "--public-key", str(pem)) == 1
    with pytest.raises(BundleInvalid):
        verify_bundle(bundle_from_row(tampered_rows[1]), pem.read_bytes())
