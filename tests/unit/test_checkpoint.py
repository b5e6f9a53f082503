"""Tests for signed checkpoints and key handling in `expound.archive.checkpoint`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import (
    Checkpoint,
    checkpoint_body,
    generate_private_key_file,
    key_id_of,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
)
from expound.times import format_utc, utc_now
from tests.support import signed_note

ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
TIMESTAMP = "2025-01-02T03:04:05.123456Z"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def checkpoint(key: Ed25519PrivateKey) -> Checkpoint:
    return sign_checkpoint(key, "expound/test-log", 8, ROOT, TIMESTAMP)


def test_body_is_a_c2sp_checkpoint() -> None:
    body = checkpoint_body("expound/test-log", 8, ROOT, TIMESTAMP)
    assert body == (
        b"expound/test-log\n"
        b"8\n"
        b"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
        b"timestamp 2025-01-02T03:04:05.123456Z\n"
    )


def test_an_independent_signed_note_verifier_accepts_the_note(
    key: Ed25519PrivateKey, checkpoint: Checkpoint
) -> None:
    vkey = signed_note.parse_verifier_key(verifier_key("expound/test-log", key.public_key()))
    note = checkpoint.note()
    text = signed_note.open_note(note, [vkey])
    head = signed_note.parse_checkpoint(text)
    assert (head.origin, head.size, head.root_hash) == ("expound/test-log", 8, ROOT)
    assert head.extensions == [f"timestamp {TIMESTAMP}"]
    # The key id is the spec's: SHA-256(name || 0x0A || 0x01 || key)[:4].
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert checkpoint.key_id == hashlib.sha256(b"expound/test-log\n\x01" + raw).digest()[:4]

    other = signed_note.parse_verifier_key(
        verifier_key("expound/test-log", Ed25519PrivateKey.generate().public_key())
    )
    with pytest.raises(signed_note.NoteError, match="no known key"):
        signed_note.open_note(note, [other])
    forged = note.replace("\n8\n", "\n9\n", 1)
    with pytest.raises(signed_note.NoteError, match="does not verify"):
        signed_note.open_note(forged, [vkey])


def test_a_known_go_sumdb_note_verifies_with_the_independent_verifier() -> None:
    """The reference verifier passes the example of golang.org/x/mod/sumdb/note's docs."""
    vkey = signed_note.parse_verifier_key(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    note = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
        "\n"
        "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
        "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    assert signed_note.open_note(note, [vkey]).startswith("If you think cryptography")


def test_checkpoints_signed_in_the_old_format_still_verify(key: Ed25519PrivateKey) -> None:
    body = (
        b"expound-checkpoint/v1\nexpound/test-log\n8\n"
        b"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n2025-01-02T03:04:05.123456Z\n"
    )
    old = Checkpoint("expound/test-log", 8, ROOT, TIMESTAMP, key.sign(body))
    assert verify_checkpoint(key.public_key(), old)
    assert "key_id" not in old.to_json()
    assert Checkpoint.from_json(old.to_json()) == old
    assert not verify_checkpoint(key.public_key(), dataclasses.replace(old, size=9))
    with pytest.raises(ValueError, match="no note"):
        old.note()
    # An old signature does not pass as a new one, nor the other way round.
    as_new = dataclasses.replace(old, key_id=key_id_of("expound/test-log", key.public_key()))
    assert not verify_checkpoint(key.public_key(), as_new)


def test_a_key_id_of_another_key_fails(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    other = key_id_of("expound/test-log", Ed25519PrivateKey.generate().public_key())
    assert not verify_checkpoint(key.public_key(), dataclasses.replace(checkpoint, key_id=other))


def test_sign_then_verify(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    assert checkpoint.log_id == "expound/test-log"
    assert checkpoint.size == 8
    assert checkpoint.root_hash == ROOT
    assert checkpoint.timestamp == TIMESTAMP
    assert len(checkpoint.signature) == 64
    assert verify_checkpoint(key.public_key(), checkpoint)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("log_id", "expound/other-log"),
        ("size", 9),
        ("size", 0),
        ("root_hash", bytes(32)),
        ("root_hash", ROOT[:-1] + bytes([ROOT[-1] ^ 1])),
        ("timestamp", "2025-01-02T03:04:06.123456Z"),
    ],
)
def test_any_changed_field_fails(
    key: Ed25519PrivateKey, checkpoint: Checkpoint, field: str, value: object
) -> None:
    tampered = dataclasses.replace(checkpoint, **{field: value})
    assert not verify_checkpoint(key.public_key(), tampered)


@pytest.mark.parametrize("position", [0, 31, 63])
def test_changed_signature_fails(
    key: Ed25519PrivateKey, checkpoint: Checkpoint, position: int
) -> None:
    signature = bytearray(checkpoint.signature)
    signature[position] ^= 0x01
    tampered = dataclasses.replace(checkpoint, signature=bytes(signature))
    assert not verify_checkpoint(key.public_key(), tampered)


def test_another_key_fails(checkpoint: Checkpoint) -> None:
    assert not verify_checkpoint(Ed25519PrivateKey.generate().public_key(), checkpoint)


def test_json_round_trip(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    encoded = checkpoint.to_json()
    assert encoded == {
        "log_id": "expound/test-log",
        "size": 8,
        "root_hash": ROOT.hex(),
        "timestamp": TIMESTAMP,
        "signature": checkpoint.signature.hex(),
        "key_id": checkpoint.key_id.hex(),
    }
    # Through real JSON text, not just the dict.
    decoded = Checkpoint.from_json(json.loads(json.dumps(encoded)))
    assert decoded == checkpoint
    assert verify_checkpoint(key.public_key(), decoded)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": "8"}, "size"),
        ({"size": True}, "size"),
        ({"size": -1}, "size"),
        ({"root_hash": "zz"}, "root_hash"),
        ({"root_hash": ROOT.hex()[:-2]}, "root_hash"),
        ({"root_hash": ROOT.hex().upper()}, "root_hash"),
        ({"signature": "00"}, "signature"),
        ({"key_id": "abc"}, "key_id"),
        ({"log_id": 7}, "log_id"),
        ({"timestamp": "2025-01-02 03:04:05"}, "timestamp"),
        ({"extra": 1}, "extra"),
    ],
)
def test_from_json_rejects_malformed(
    checkpoint: Checkpoint, change: dict[str, Any], message: str
) -> None:
    encoded = {**checkpoint.to_json(), **change}
    with pytest.raises(ValueError, match=message):
        Checkpoint.from_json(encoded)


def test_from_json_rejects_missing_field(checkpoint: Checkpoint) -> None:
    encoded = checkpoint.to_json()
    del encoded["signature"]
    with pytest.raises(ValueError, match="signature"):
        Checkpoint.from_json(encoded)


@pytest.mark.parametrize(
    ("log_id", "size", "root_hash", "timestamp", "message"),
    [
        ("", 1, ROOT, TIMESTAMP, "log_id"),
        ("two\nlines", 1, ROOT, TIMESTAMP, "log_id"),
        ("with space", 1, ROOT, TIMESTAMP, "log_id"),
        ("a+b", 1, ROOT, TIMESTAMP, "log_id"),
        ("log", -1, ROOT, TIMESTAMP, "size"),
        ("log", 1, ROOT[:16], TIMESTAMP, "root_hash"),
        ("log", 1, ROOT, "2025-01-02T03:04:05+01:00", "timestamp"),
        ("log", 1, ROOT, "2025-13-02T03:04:05Z", "timestamp"),
        ("log", 1, ROOT, "yesterday", "timestamp"),
    ],
)
def test_body_rejects_ambiguous_or_invalid_fields(
    log_id: str, size: int, root_hash: bytes, timestamp: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        checkpoint_body(log_id, size, root_hash, timestamp)


def test_utc_timestamp_normalises_to_utc() -> None:
    moment = datetime(2025, 1, 2, 4, 4, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_utc(moment) == TIMESTAMP
    assert format_utc(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05.000000Z"
    with pytest.raises(ValueError, match="timezone"):
        format_utc(datetime(2025, 1, 2, 3, 4, 5))
    checkpoint_body("log", 0, ROOT, utc_now())


def test_key_file_is_private_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "log-signing.pem"
    key = generate_private_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(path)
    assert public_key_pem(loaded) == public_key_pem(key)


def test_key_file_mode_ignores_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        path = tmp_path / "key.pem"
        generate_private_key_file(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    generate_private_key_file(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_private_key_file(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_load_refuses_group_or_world_accessible_key(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key.pem"
    generate_private_key_file(path)
    path.chmod(mode)
    with pytest.raises(PermissionError, match=r"0o600|group|others"):
        load_private_key(path)


def test_load_refuses_non_ed25519_key(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_key(path)


def test_public_key_pem_round_trip(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    pem = public_key_pem(key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_key_pem(key.public_key()) == pem
    assert verify_checkpoint(load_public_key(pem), checkpoint)


def test_load_public_key_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        load_public_key(b"not a key")
