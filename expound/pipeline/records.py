"""Serving the archive to callers: records with proofs, checkpoints, consistency.

The gRPC servicer converts messages and calls this; what a proof request means (which
checkpoint, which sizes) is decided here and in the stores.
"""

from __future__ import annotations

from expound.archive.checkpoint import Checkpoint
from expound.archive.records import StoredRecord
from expound.archive.store import (
    ArchiveStore,
    ConsistencyProof,
    InclusionProof,
    RecordFilter,
    RecordPage,
)
from expound.errors import FieldViolation, InvalidRequest

MAX_SIZE = (1 << 63) - 1


def _check_size(value: int, field: str) -> None:
    if not 0 <= value <= MAX_SIZE:
        raise InvalidRequest("invalid request", [FieldViolation(field, "out of range")])


class RecordService:
    """Archived records and their proofs."""

    def __init__(self, archive: ArchiveStore) -> None:
        self._archive = archive

    async def get_record(
        self, record_id: str, include_proof: bool
    ) -> tuple[StoredRecord, InclusionProof | None]:
        """One record and, on request, its inclusion proof to the latest checkpoint."""
        if not record_id:
            raise InvalidRequest("invalid request", [FieldViolation("record_id", "required")])
        record = await self._archive.get(record_id)
        proof = await self._archive.prove_inclusion(record) if include_proof else None
        return record, proof

    async def list_records(
        self, where: RecordFilter, page_size: int, page_token: str
    ) -> RecordPage:
        """A page of archived records, newest first."""
        return await self._archive.list(where, page_size, page_token)

    async def checkpoint(self, size: int) -> Checkpoint:
        """The checkpoint at ``size`` (0: the latest, signed now if stale)."""
        _check_size(size, "size")
        found = await self._archive.checkpoint(size)
        if found is None:
            raise InvalidRequest(
                "the archive is empty", [FieldViolation("size", "no checkpoint signed yet")]
            )
        return found

    async def consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Proof that the checkpoint at ``old_size`` is a prefix of the one at ``new_size``."""
        _check_size(old_size, "old_size")
        _check_size(new_size, "new_size")
        return await self._archive.prove_consistency(old_size, new_size)
