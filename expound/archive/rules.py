"""Rules every archive store applies the same way, and the row an audit reads."""

from __future__ import annotations

from dataclasses import dataclass

from expound.archive.checkpoint import Checkpoint
from expound.archive.records import KIND_RECORD, StoredRecord
from expound.errors import FieldViolation, InvalidRequest, RetentionRefused


@dataclass(frozen=True)
class LogRow:
    """One log entry as an audit reads it; ``canonical`` is None once expired."""

    seq: int
    leaf_hash: bytes
    root_after: bytes
    canonical: bytes | None
    kind: str


def parse_page_token(token: str) -> int | None:
    """The sequence number a page token continues below (None for the first page)."""
    if not token:
        return None
    if not token.isdigit() or len(token) > 19:
        raise InvalidRequest(
            "invalid page token", [FieldViolation("page_token", "not a token this service issued")]
        )
    return int(token)


def require_checkpoint(found: Checkpoint | None, size: int, field: str) -> Checkpoint:
    """``found``, or InvalidRequest naming ``field`` when no checkpoint was signed at ``size``."""
    if found is None:
        raise InvalidRequest(
            f"no signed checkpoint at size {size}",
            [FieldViolation(field, "not the size of a signed checkpoint")],
        )
    return found


def require_ordered(old_size: int, new_size: int) -> None:
    """Refuses a consistency request whose old size exceeds the new one."""
    if old_size > new_size:
        raise InvalidRequest(
            "old_size is larger than new_size",
            [FieldViolation("old_size", f"at most new_size ({new_size})")],
        )


def require_expirable(record: StoredRecord, now: str) -> None:
    """Refuses to expire a payload that is held, retained, already gone or a tombstone.

    Raises:
        RetentionRefused: Naming why.
    """
    if record.kind != KIND_RECORD:
        raise RetentionRefused(f"{record.record_id} is a {record.kind}, not a record")
    if record.expired:
        raise RetentionRefused(f"{record.record_id} has already expired")
    if record.legal_hold:
        raise RetentionRefused(f"{record.record_id} is under legal hold")
    if record.retain_until > now:
        raise RetentionRefused(f"{record.record_id} is retained until {record.retain_until}")
