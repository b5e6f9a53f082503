"""Checks a record's proof bundle with nothing but the archive's public key.

A bundle is one JSON object, written by ``expound records get ID --proof`` and by
``expound records export``::

    {
      "format": "expound.inclusion-bundle/v1",
      "record_id": "...",
      "record": "<the record's canonical JSON text, byte for byte>" | null (expired),
      "leaf_hash": "<64 hex>",        SHA-256(0x00 || record bytes)
      "leaf_index": 17,               the record's 0-based position in the log
      "audit_path": ["<64 hex>", ...],
      "checkpoint": {"log_id", "size", "root_hash", "timestamp", "signature", "key_id"}
    }

`verify_bundle` checks, in order: the checkpoint's Ed25519 signature, that the record
hashes to the leaf and names the same record id, and the audit path from the leaf to the
signed root (RFC 9162 section 2.1.3.2). An expired record (``record`` null) still proves
that its leaf was logged; only the payload is gone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from expound.archive.checkpoint import (
    Checkpoint,
    load_public_key,
    signature_problem,
    verify_checkpoint,
)
from expound.archive.merkle import leaf_hash, verify_inclusion
from expound.v1 import explain_pb2 as pb

BUNDLE_FORMAT = "expound.inclusion-bundle/v1"


class BundleInvalid(Exception):
    """The bundle does not prove what it claims; the message says which check failed."""


@dataclass(frozen=True)
class VerifiedRecord:
    """What a verified bundle proves: this record is leaf ``leaf_index`` of the signed log."""

    record_id: str
    leaf_index: int
    checkpoint: Checkpoint
    expired: bool


def checkpoint_from_pb(message: pb.SignedCheckpoint) -> Checkpoint:
    """A wire checkpoint as the archive's dataclass."""
    return Checkpoint(
        message.log_id,
        message.size,
        bytes(message.root_hash),
        message.timestamp,
        bytes(message.signature),
        bytes(message.key_id),
    )


def bundle_from_record(record: pb.Record) -> dict[str, Any]:
    """The proof bundle of a record fetched with ``include_proof``.

    Raises:
        ValueError: If the record carries no proof.
    """
    if not record.HasField("proof"):
        raise ValueError(f"record {record.record_id} came without a proof")
    proof = record.proof
    return {
        "format": BUNDLE_FORMAT,
        "record_id": record.record_id,
        "record": None if record.expired else record.canonical_json,
        "leaf_hash": bytes(proof.leaf_hash).hex(),
        "leaf_index": proof.leaf_index,
        "audit_path": [bytes(node).hex() for node in proof.audit_path],
        "checkpoint": checkpoint_from_pb(proof.checkpoint).to_json(),
    }


def _hex(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleInvalid(f"{what} is not hex text")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise BundleInvalid(f"{what} is not hex text") from exc


def verify_bundle(bundle: Mapping[str, Any], public_key_pem: bytes) -> VerifiedRecord:
    """Checks a proof bundle against the archive's public key.

    Args:
        bundle: The decoded bundle JSON.
        public_key_pem: The archive's Ed25519 public key (``expound archive public-key``).

    Returns:
        What the bundle proves.

    Raises:
        BundleInvalid: Naming the first check that failed.
        ValueError: If the public key is not an Ed25519 PEM key.
    """
    public_key = load_public_key(public_key_pem)
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleInvalid(f"not an {BUNDLE_FORMAT} bundle")
    try:
        checkpoint = Checkpoint.from_json(bundle["checkpoint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleInvalid(f"malformed checkpoint: {exc}") from exc
    if not verify_checkpoint(public_key, checkpoint):
        raise BundleInvalid(
            f"the checkpoint does not verify: {signature_problem(public_key, checkpoint)}"
        )
    leaf = _hex(bundle.get("leaf_hash"), "leaf_hash")
    record_id = bundle.get("record_id")
    text = bundle.get("record")
    if text is not None:
        if not isinstance(text, str) or leaf_hash(text.encode("utf-8")) != leaf:
            raise BundleInvalid("the record does not hash to the leaf: it was altered")
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("record_id") != record_id:
            raise BundleInvalid("the record inside the bundle has another record id")
    index = bundle.get("leaf_index")
    path = bundle.get("audit_path")
    if not isinstance(index, int) or not isinstance(path, list):
        raise BundleInvalid("leaf_index or audit_path is missing")
    nodes = [_hex(node, "audit path node") for node in path]
    if not verify_inclusion(leaf, index, checkpoint.size, nodes, checkpoint.root_hash):
        raise BundleInvalid(
            f"the audit path does not lead from leaf {index} to the signed root of size "
            f"{checkpoint.size}"
        )
    return VerifiedRecord(str(record_id), index, checkpoint, text is None)
