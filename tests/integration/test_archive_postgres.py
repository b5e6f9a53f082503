"""The archive on PostgreSQL: the shared contract and tamper suites, and the roles.

The contract runs as the service role (INSERT and SELECT only) on a schema its owner
installed, as a deployment does after ``expound archive init``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import load_private_key, public_key_pem
from expound.archive.postgres import install_schema, open_postgres
from expound.archive.retention import RetentionPolicy
from expound.clients.cli import main
from expound.errors import ArchiveUnavailable
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.archive_backends import PostgresRoles, backend_fixture, fixed_signer
from tests.support.archive_contract import *  # noqa: F403  (the contract's tests)
from tests.support.archive_contract import fill
from tests.support.archive_tamper import *  # noqa: F403  (the guard and tamper tests)
from tests.support.callers import TEST_CALLER
from tests.unit.test_server import request

pytestmark = pytest.mark.postgres

backend = backend_fixture("postgres")


async def test_the_service_never_installs_the_schema(postgres_roles: PostgresRoles) -> None:
    key = Ed25519PrivateKey.generate()
    for dsn in (postgres_roles.service_dsn, postgres_roles.owner_dsn):
        with pytest.raises(ArchiveUnavailable, match="expound archive init"):
            await open_postgres(dsn, fixed_signer(key), RetentionPolicy())
    with psycopg.connect(postgres_roles.owner_dsn) as conn:
        assert conn.execute("SELECT to_regclass('records')").fetchone() == (None,)


async def test_an_archive_of_an_earlier_schema_is_refused(
    postgres_roles: PostgresRoles, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _init(monkeypatch, postgres_roles)
    key = Ed25519PrivateKey.generate()
    with psycopg.connect(postgres_roles.owner_dsn, autocommit=True) as conn:
        conn.execute("COMMENT ON TABLE records IS NULL")  # as schema 2 left it
    with pytest.raises(ArchiveUnavailable, match="earlier schema"):
        await open_postgres(postgres_roles.service_dsn, fixed_signer(key), RetentionPolicy())
    async with await psycopg.AsyncConnection.connect(
        postgres_roles.owner_dsn, autocommit=True
    ) as owner:
        with pytest.raises(ArchiveUnavailable, match="earlier schema"):
            await install_schema(owner, postgres_roles.service)


async def test_init_creates_a_missing_service_role_with_insert_and_select_only(
    postgres_roles: PostgresRoles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    role = f"{postgres_roles.service}_new"
    monkeypatch.setenv("EXPOUND_ARCHIVE_OWNER_DSN", postgres_roles.owner_dsn)
    try:
        assert await asyncio.to_thread(main, ["archive", "init", "--service-role", role]) == 0
        assert f"created the login role {role}" in capsys.readouterr().out
        with psycopg.connect(postgres_roles.owner_dsn, autocommit=True) as conn:
            grants = conn.execute(
                "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s",
                (role,),
            ).fetchall()
            assert sorted(grant for (grant,) in grants) == ["INSERT", "SELECT"]
        assert await asyncio.to_thread(main, ["archive", "init", "--service-role", role]) == 0
        assert "created" not in capsys.readouterr().out, "an existing role is kept"
    finally:
        with psycopg.connect(postgres_roles.owner_dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


async def _init(monkeypatch: pytest.MonkeyPatch, roles: PostgresRoles) -> None:
    monkeypatch.setenv("EXPOUND_ARCHIVE_BACKEND", "postgres")
    monkeypatch.setenv("EXPOUND_ARCHIVE_OWNER_DSN", roles.owner_dsn)
    monkeypatch.setenv("EXPOUND_ARCHIVE_DSN", roles.service_dsn)
    assert await asyncio.to_thread(main, ["archive", "init"]) == 0


async def test_after_init_the_service_role_may_only_insert_and_select(
    postgres_roles: PostgresRoles,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _init(monkeypatch, postgres_roles)
    key = Ed25519PrivateKey.generate()
    store = await open_postgres(postgres_roles.service_dsn, fixed_signer(key, 1), RetentionPolicy())
    try:
        await fill(store, 2)
    finally:
        await store.aclose()
    with psycopg.connect(postgres_roles.service_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (2,)
        for statement in (
            "UPDATE records SET decision = 'approve'",
            "DELETE FROM payloads",
            "DELETE FROM access_log",
            "UPDATE access_log SET principal = 'x'",
            "TRUNCATE records CASCADE",
            "ALTER TABLE records DISABLE TRIGGER USER",
            "DROP TRIGGER records_append_only ON records",
            "CREATE OR REPLACE FUNCTION expound_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # Its one way to remove a payload is the owner's function, behind the guard.
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="retained"):
            conn.execute("SELECT expound_remove_payload(0)")
    for dsn, warned in ((postgres_roles.service_dsn, False), (postgres_roles.owner_dsn, True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="expound.archive"):
            store = await open_postgres(dsn, None, RetentionPolicy())
            await store.aclose()
        assert ("owns the schema or may UPDATE" in caplog.text) is warned, dsn
    with psycopg.connect(postgres_roles.other_dsn, autocommit=True) as conn:
        for statement in ("SELECT count(*) FROM records", "SELECT expound_remove_payload(0)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


async def test_the_server_runs_as_the_service_role_and_expires_through_its_rpc(
    postgres_roles: PostgresRoles,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
) -> None:
    await _init(monkeypatch, postgres_roles)
    served = settings.model_copy(
        update={
            "archive_backend": "postgres",
            "archive_dsn": postgres_roles.service_dsn,
            "retention_months": 0,
        }
    )
    async with (
        running_server(served) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        answer = await stub.Explain(request(GBM, denied_applicant, decision_id="pg-1"))
        kept = await stub.Explain(request(GBM, denied_applicant, decision_id="pg-2"))
        await stub.PlaceHold(pb.PlaceHoldRequest(record_id=kept.record_id, reason="case 1"))
        expired = await stub.ExpireRecords(pb.ExpireRecordsRequest())
        assert [t.record_id for t in expired.tombstones] == [answer.record_id]
        await stub.GetRecord(pb.GetRecordRequest(record_id=kept.record_id))
        log = await stub.ListAccessLog(pb.ListAccessLogRequest())
        assert [(e.rpc, list(e.record_ids)) for e in log.entries] == [
            ("GetRecord", [kept.record_id])
        ]
        stored, _ = await running.records.get_record(answer.record_id, False, TEST_CALLER)
        assert stored.expired
    public = tmp_path / "public.pem"
    public.write_bytes(public_key_pem(load_private_key(settings.signing_key_path)))
    audit = ["archive", "audit", "--public-key", str(public)]
    assert await asyncio.to_thread(main, audit) == 0
