"""Serving the archive to callers: records with proofs, checkpoints, consistency, the acts
of records administration, and the access log of every read of records.

The gRPC servicer converts messages and calls this with the caller's principal and request
id; what a proof request means (which checkpoint, which sizes) is decided here and in the
stores. A read of records is written to the access log before it is answered: a read that
cannot be logged is not served.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import MAX_ACCESS_PAGE
from expound.archive.records import StoredRecord
from expound.archive.store import (
    AccessEntry,
    ArchiveStore,
    ConsistencyProof,
    ExpiryReport,
    InclusionProof,
    RecordFilter,
    RecordPage,
)
from expound.errors import FieldViolation, InvalidRequest, RecordNotFound
from expound.times import utc_now

MAX_SIZE = (1 << 63) - 1
MAX_REASON_CHARS = 1000
MAX_ID_CHARS = 200
MAX_EXPIRE_IDS = 1000
DEFAULT_ACCESS_PAGE = 1000


@dataclass(frozen=True)
class Caller:
    """Who calls, and in which call: what the access log and the events record.

    ``own_records_only``: the caller's role grants reading only the records it made (the
    analyst's); another principal's record is answered as unknown, and never logged as read.
    """

    principal: str
    request_id: str
    own_records_only: bool = False


def _check_size(value: int, field: str) -> None:
    if not 0 <= value <= MAX_SIZE:
        raise InvalidRequest("invalid request", [FieldViolation(field, "out of range")])


def _check_record_id(record_id: str, field: str = "record_id", required: bool = True) -> None:
    if required and not record_id:
        raise InvalidRequest("invalid request", [FieldViolation(field, "required")])
    if len(record_id) > MAX_ID_CHARS:
        raise InvalidRequest(
            "invalid request", [FieldViolation(field, f"longer than {MAX_ID_CHARS} characters")]
        )


def _check_reason(reason: str, required: bool) -> None:
    if required and not reason.strip():
        raise InvalidRequest("invalid request", [FieldViolation("reason", "required")])
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidRequest(
            "invalid request",
            [FieldViolation("reason", f"longer than {MAX_REASON_CHARS} characters")],
        )


class RecordService:
    """Archived records, their proofs, their administration and who read them."""

    def __init__(self, archive: ArchiveStore) -> None:
        self._archive = archive

    async def _log_reads(self, caller: Caller, rpc: str, record_ids: Sequence[str]) -> None:
        entry = AccessEntry(utc_now(), caller.principal, rpc, caller.request_id, tuple(record_ids))
        await self._archive.log_access(entry)

    async def get_record(
        self, record_id: str, include_proof: bool, caller: Caller
    ) -> tuple[StoredRecord, InclusionProof | None]:
        """One record and, on request, its inclusion proof to the latest checkpoint."""
        if not record_id:
            raise InvalidRequest("invalid request", [FieldViolation("record_id", "required")])
        record = await self._archive.get(record_id)
        if caller.own_records_only and record.principal != caller.principal:
            # As for an unknown id: another principal's record is not even confirmed.
            raise RecordNotFound(f"no record {record_id!r}")
        proof = await self._archive.prove_inclusion(record) if include_proof else None
        await self._log_reads(caller, "GetRecord", [record.record_id])
        return record, proof

    async def list_records(
        self, where: RecordFilter, page_size: int, page_token: str, caller: Caller
    ) -> RecordPage:
        """A page of archived records, newest first (only the caller's own where its role
        says so: filtered in the query, so pages stay full)."""
        if caller.own_records_only:
            where = dataclasses.replace(where, principal=caller.principal)
        page = await self._archive.list(where, page_size, page_token)
        await self._log_reads(caller, "ListRecords", [r.record_id for r in page.records])
        return page

    async def checkpoint(self, size: int) -> Checkpoint:
        """The checkpoint at ``size`` (0: the latest signed). Never signs: a read."""
        _check_size(size, "size")
        found = await self._archive.checkpoint(size)
        if found is None:
            raise InvalidRequest(
                "no checkpoint is signed yet", [FieldViolation("size", "no checkpoint signed yet")]
            )
        return found

    async def consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Proof that the checkpoint at ``old_size`` is a prefix of the one at ``new_size``."""
        _check_size(old_size, "old_size")
        _check_size(new_size, "new_size")
        return await self._archive.prove_consistency(old_size, new_size)

    async def place_hold(self, record_id: str, reason: str, actor: str) -> StoredRecord:
        """Places a legal hold: a signed log event naming ``actor``; returns the event."""
        _check_record_id(record_id)
        _check_reason(reason, required=True)
        return await self._archive.place_hold(record_id, actor, reason)

    async def release_hold(self, record_id: str, reason: str, actor: str) -> StoredRecord:
        """Releases the record's legal hold: a signed log event; returns the event."""
        _check_record_id(record_id)
        _check_reason(reason, required=True)
        return await self._archive.release_hold(record_id, actor, reason)

    async def expire(self, record_ids: Sequence[str], reason: str, actor: str) -> ExpiryReport:
        """Expires the named records, or every one due when none is named."""
        if len(record_ids) > MAX_EXPIRE_IDS:
            raise InvalidRequest(
                "invalid request", [FieldViolation("record_ids", f"more than {MAX_EXPIRE_IDS}")]
            )
        for record_id in record_ids:
            _check_record_id(record_id, "record_ids")
        _check_reason(reason, required=False)
        return await self._archive.expire(actor, list(record_ids) or None, reason)

    async def history(self, record_id: str) -> list[StoredRecord]:
        """The events on a record, oldest first."""
        _check_record_id(record_id)
        return await self._archive.history(record_id)

    async def access_log(
        self, after: int, page_size: int, record_id: str = ""
    ) -> tuple[list[AccessEntry], int]:
        """A page of the access log after entry ``after``, and where the next one starts.

        With ``record_id``, only the reads that returned that record: who saw it.

        Returns:
            The entries and the ``after`` of the next page (0 when this one is the last).
        """
        _check_size(after, "after_seq")
        size = min(page_size or DEFAULT_ACCESS_PAGE, MAX_ACCESS_PAGE)
        _check_record_id(record_id, required=False)
        entries = await self._archive.read_access_log(after, size, record_id)
        more = len(entries) == size
        return entries, entries[-1].seq if more and entries else 0
