"""Log entries: what is kept for every Explain answer and every act on a record.

An entry is RFC 8785 (JCS) canonical JSON of a plain dict, never pickle; its sha256 is over
exactly those bytes, so anyone can recompute it from the stored text. Every column a store
keeps beside the payload (`INDEXED`) is a top-level field of the payload itself, read by
`columns_of`: the stores index what the payload says, and the audit checks each row's
columns against its payload (an expired record's against its tombstone, which copies them).

Kinds of entry, one log and one sequence:

* ``record``: an answered Explain call;
* ``hold``: a legal hold placed on a record (``target_seq`` the record's seq);
* ``release``: the release of a hold (``target_seq`` the hold's seq);
* ``tombstone``: the expiry of a record's payload (``target_seq`` the record's seq).

Events name their actor in ``principal``, their reason and time, and the record they act on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from expound.archive import merkle
from expound.domain import Explanation

TOMBSTONE_SCHEMA = "expound.tombstone/v2"
HOLD_SCHEMA = "expound.hold/v1"
RELEASE_SCHEMA = "expound.release/v1"
KIND_RECORD = "record"
KIND_TOMBSTONE = "tombstone"
KIND_HOLD = "hold"
KIND_RELEASE = "release"
KINDS = (KIND_RECORD, KIND_TOMBSTONE, KIND_HOLD, KIND_RELEASE)

INDEXED = (
    "kind",
    "record_id",
    "model_id",
    "decision_id",
    "principal",
    "idempotency_key",
    "request_sha256",
    "created_at",
    "decision",
    "retain_until",
    "target_seq",
)
"""The payload fields every store keeps as columns, in this order, then ``sha256``."""

Columns = tuple[object, ...]


SAFE_INTEGER = 2**53 - 1
"""JCS numbers are IEEE doubles: larger integers are `rfc8785`'s to refuse."""
_MARKED = re.compile(rb'"\\u0000jcs(\d+)\\u0000"')
"""A stand-in for a number whose ECMAScript form Python's encoder does not write, as the
encoder escapes it; a value with a NUL anywhere goes to the reference instead, so nothing
else can spell it."""


class _Reference(Exception):
    """The value has something only the reference implementation may decide."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical bytes of a JSON-compatible value.

    Byte for byte what `rfc8785.dumps` writes (the tests hold them equal) in under half
    its time, on the event loop of every Explain call. Python's C encoder with sorted keys
    and no ASCII escaping already escapes strings as JCS does; what differs is numbers
    (JCS writes ECMAScript's form: ``2.0`` as ``2``, ``1e-05`` as ``0.00001``) and key
    order beyond the BMP (UTF-16 code units). So exact integral floats become integers,
    other floats outside the fixed-point range both write alike go through `rfc8785` one by
    one, and anything unusual (a key beyond the BMP, a NUL, an unsafe integer, NaN, a type
    other than JSON's own) sends the whole value to `rfc8785`, which writes or refuses it.
    """
    numbers: list[bytes] = []
    try:
        prepared = _prepare(value, numbers)
        encoded = json.dumps(
            prepared, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
    except (_Reference, UnicodeEncodeError):  # UnicodeEncodeError: a lone surrogate
        return rfc8785.dumps(value)
    if not numbers:
        return encoded
    return _MARKED.sub(lambda found: numbers[int(found.group(1))], encoded)


def _prepare(value: Any, numbers: list[bytes]) -> Any:
    """``value`` with each float JSON would write differently from JCS made exact."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise _Reference
        return value
    if kind is float:
        magnitude = abs(value)
        if magnitude != magnitude or magnitude == float("inf"):
            raise _Reference
        if value.is_integer():
            if magnitude <= SAFE_INTEGER:
                return int(value)  # exact, as ECMAScript writes it; -0.0 is "0"
        elif 1e-4 <= magnitude < 1e16:
            return value  # Python's repr and ECMAScript agree: shortest digits, fixed point
        numbers.append(rfc8785.dumps(value))
        return f"\x00jcs{len(numbers) - 1}\x00"
    if kind is dict:
        prepared = {}
        for key, item in value.items():
            if type(key) is not str or "\x00" in key:
                raise _Reference
            if not key.isascii() and max(key) > "\uffff":
                raise _Reference
            prepared[key] = _prepare(item, numbers)
        return prepared
    if kind is list:
        return [_prepare(item, numbers) for item in value]
    if kind is int:
        if -SAFE_INTEGER <= value <= SAFE_INTEGER:
            return value
        raise _Reference
    if value is None or kind is bool:
        return value
    raise _Reference


def columns_of(body: Mapping[str, Any], canonical: bytes) -> Columns:
    """The columns a store keeps for a payload: its `INDEXED` fields, then its sha256.

    A missing field reads as "" (``target_seq``: None), so a payload without it cannot
    match a row that claims a value.
    """
    values: list[object] = [body.get(name, "") for name in INDEXED[:-1]]
    values.append(body.get("target_seq"))
    values.append(hashlib.sha256(canonical).hexdigest())
    return tuple(values)


@dataclass(frozen=True)
class NewRecord:
    """An entry ready to append: its canonical bytes and the columns read from them.

    Build one with `NewRecord.from_body`; a record's ``retain_until`` is set by the log
    when it appends it (`sealed`), from its retention policy.
    """

    record_id: str
    model_id: str
    decision_id: str
    idempotency_key: str
    request_sha256: str
    created_at: str
    decision: str
    canonical: bytes
    kind: str = KIND_RECORD
    principal: str = ""
    retain_until: str = ""
    target_seq: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> NewRecord:
        """The entry of ``body``, every column taken from it."""
        canonical = canonical_json(dict(body))
        kind, record_id, model_id, decision_id, principal, key, request_sha, created = (
            str(body.get(name, "")) for name in INDEXED[:8]
        )
        target = body.get("target_seq")
        return cls(
            record_id=record_id,
            model_id=model_id,
            decision_id=decision_id,
            idempotency_key=key,
            request_sha256=request_sha,
            created_at=created,
            decision=str(body.get("decision", "")),
            canonical=canonical,
            kind=kind,
            principal=principal,
            retain_until=str(body.get("retain_until", "")),
            target_seq=target if isinstance(target, int) else None,
        )

    def sealed(self, retain_until: str) -> NewRecord:
        """This entry with its retain-until time written into the payload."""
        body = json.loads(self.canonical)
        body["retain_until"] = retain_until
        return NewRecord.from_body(body)

    @property
    def sha256(self) -> str:
        """sha256 of the canonical bytes."""
        return hashlib.sha256(self.canonical).hexdigest()

    @property
    def leaf_hash(self) -> bytes:
        """The record's Merkle leaf: SHA-256(0x00 || canonical bytes)."""
        return merkle.leaf_hash(self.canonical)


@dataclass(frozen=True)
class StoredRecord:
    """A committed log entry with its position in the log.

    ``seq`` is the 0-based leaf index. An expired record keeps its row and ``leaf_hash``
    but not its payload: ``canonical`` is empty and ``expired`` is true.
    """

    seq: int
    record_id: str
    model_id: str
    decision_id: str
    idempotency_key: str
    request_sha256: str
    created_at: str
    decision: str
    sha256: str
    canonical: bytes
    leaf_hash: bytes = b""
    kind: str = KIND_RECORD
    retain_until: str = ""
    legal_hold: bool = False
    expired: bool = False
    principal: str = ""
    target_seq: int | None = None

    def explanation(self) -> Explanation:
        """The Explain answer this record holds."""
        return Explanation.model_validate(json.loads(self.canonical)["response"])

    def body(self) -> dict[str, Any]:
        """The payload as JSON (empty once expired)."""
        return json.loads(self.canonical) if self.canonical else {}

    def columns(self) -> Columns:
        """The row's columns in `columns_of` order."""
        return (*(getattr(self, name) for name in INDEXED), self.sha256)


def column_mismatch(columns: Columns, expected: Columns) -> str:
    """The first column whose value differs from ``expected`` ("" when all agree)."""
    for name, found, wanted in zip((*INDEXED, "sha256"), columns, expected, strict=True):
        if found != wanted:
            return name
    return ""


def _event(schema: str, kind: str, target: StoredRecord, event: EventFacts) -> dict[str, Any]:
    return {
        "schema": schema,
        "kind": kind,
        "record_id": event.event_id,
        "created_at": event.at,
        "principal": event.actor,
        "reason": event.reason,
        "model_id": target.model_id,
        "decision_id": target.decision_id,
    }


@dataclass(frozen=True)
class EventFacts:
    """Who acts on a record, when, why, and the new entry's id."""

    event_id: str
    actor: str
    reason: str
    at: str


def build_hold(record: StoredRecord, event: EventFacts) -> NewRecord:
    """The entry that places a legal hold on ``record``."""
    body = _event(HOLD_SCHEMA, KIND_HOLD, record, event)
    body |= {"target_seq": record.seq, "target_record_id": record.record_id}
    return NewRecord.from_body(body)


def build_release(record: StoredRecord, hold: StoredRecord, event: EventFacts) -> NewRecord:
    """The entry that releases ``hold``, the legal hold on ``record``."""
    body = _event(RELEASE_SCHEMA, KIND_RELEASE, record, event)
    body |= {
        "target_seq": hold.seq,
        "target_record_id": record.record_id,
        "hold_record_id": hold.record_id,
    }
    return NewRecord.from_body(body)


def build_tombstone(expired: StoredRecord, event: EventFacts) -> NewRecord:
    """The entry that records the expiry of ``expired``'s payload.

    It names the expired leaf by index and hash and copies its columns, so the log itself
    says which payload was removed and when, every proof over the old leaf still
    verifies, and the audit still checks the expired row's columns.
    """
    body = _event(TOMBSTONE_SCHEMA, KIND_TOMBSTONE, expired, event)
    body |= {
        "target_seq": expired.seq,
        "expired_record_id": expired.record_id,
        "expired_leaf_hash": expired.leaf_hash.hex(),
        "expired_columns": list(expired.columns()),
    }
    return NewRecord.from_body(body)
