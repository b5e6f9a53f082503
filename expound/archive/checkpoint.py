"""Signed checkpoints of the archive log, and the Ed25519 keys that sign them.

A checkpoint commits the log operator to one state of the log: its id, its size and its
Merkle root at a point in time. Anyone holding the public key can check a checkpoint, then
check inclusion and consistency proofs against it (see `expound.archive.merkle`).

The signed bytes are the *checkpoint body*, a fixed UTF-8 text of five lines, each ended by
``\\n``::

    expound-checkpoint/v1
    <log_id>
    <size, decimal, no sign or leading zeros>
    <root hash, standard base64 with padding>
    <timestamp, RFC 3339 in UTC ending in "Z">

Fields that could make two different checkpoints share one body (a log id holding a newline,
a timestamp in another zone) are refused, so one body always means one checkpoint.

In JSON (`Checkpoint.to_json`) every byte string is lowercase hex: ``root_hash`` (64 hex
digits) and ``signature`` (128 hex digits); numbers and text are as in the dataclass.

Private keys are unencrypted PKCS#8 PEM files that only their owner may read: `load_private_key`
refuses a file that its group or other users can access in any way, and
`generate_private_key_file` creates one with mode 0600 and never overwrites.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from expound.times import parse_utc

__all__ = [
    "BODY_HEADER",
    "Checkpoint",
    "checkpoint_body",
    "generate_private_key_file",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "sign_checkpoint",
    "verify_checkpoint",
]

BODY_HEADER = "expound-checkpoint/v1"
"""First line of every checkpoint body; names the format and its version."""

_ROOT_HASH_SIZE = 32
_SIGNATURE_SIZE = 64
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_HEX = re.compile(r"[0-9a-f]*")
_JSON_FIELDS = frozenset({"log_id", "size", "root_hash", "timestamp", "signature"})


def _check_fields(log_id: str, size: int, root_hash: bytes, timestamp: str) -> None:
    if not isinstance(log_id, str) or not log_id or not log_id.isprintable():
        raise ValueError(f"log_id must be non-empty printable text on one line, got {log_id!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"size must be a non-negative integer, got {size!r}")
    if not isinstance(root_hash, bytes) or len(root_hash) != _ROOT_HASH_SIZE:
        raise ValueError(f"root_hash must be {_ROOT_HASH_SIZE} bytes, got {root_hash!r}")
    if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError(
            f"timestamp must be RFC 3339 in UTC like 2025-01-02T03:04:05Z, got {timestamp!r}"
        )
    # The pattern checks the shape; parsing checks the calendar (no month 13).
    try:
        parse_utc(timestamp)
    except ValueError as error:
        raise ValueError(f"timestamp is not a valid date and time: {timestamp!r}") from error


def checkpoint_body(log_id: str, size: int, root_hash: bytes, timestamp: str) -> bytes:
    """Returns the exact bytes a checkpoint signature covers (format in the module docstring).

    Args:
        log_id: Name of the log; printable text without line breaks.
        size: Number of leaves in the log.
        root_hash: The 32-byte Merkle root at that size.
        timestamp: RFC 3339 time in UTC, ending in ``Z`` (see `expound.times.format_utc`).

    Returns:
        The UTF-8 body.

    Raises:
        ValueError: If a field is invalid or could make the body ambiguous.
    """
    _check_fields(log_id, size, root_hash, timestamp)
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{BODY_HEADER}\n{log_id}\n{size}\n{root}\n{timestamp}\n".encode()


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that log ``log_id`` had ``size`` leaves with root ``root_hash``.

    Attributes:
        log_id: Name of the log.
        size: Number of leaves.
        root_hash: 32-byte Merkle root over those leaves.
        timestamp: When it was signed, RFC 3339 in UTC ending in ``Z``.
        signature: 64-byte Ed25519 signature over `checkpoint_body` of the other fields.
    """

    log_id: str
    size: int
    root_hash: bytes
    timestamp: str
    signature: bytes

    def body(self) -> bytes:
        """Returns the signed bytes of this checkpoint (see `checkpoint_body`)."""
        return checkpoint_body(self.log_id, self.size, self.root_hash, self.timestamp)

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-ready dict; ``root_hash`` and ``signature`` are lowercase hex."""
        return {
            "log_id": self.log_id,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Parses the dict written by `to_json`, strictly.

        This checks shape only; call `verify_checkpoint` before trusting the contents.

        Args:
            data: Decoded JSON object.

        Returns:
            The checkpoint.

        Raises:
            ValueError: If a field is missing, unknown, of the wrong type or malformed.
        """
        missing = sorted(_JSON_FIELDS - data.keys())
        unknown = sorted(data.keys() - _JSON_FIELDS)
        if missing or unknown:
            raise ValueError(f"checkpoint JSON: missing fields {missing}, unknown fields {unknown}")
        root_hash = _from_hex(data["root_hash"], "root_hash", _ROOT_HASH_SIZE)
        signature = _from_hex(data["signature"], "signature", _SIGNATURE_SIZE)
        log_id, size, timestamp = data["log_id"], data["size"], data["timestamp"]
        _check_fields(log_id, size, root_hash, timestamp)
        return cls(log_id, size, root_hash, timestamp, signature)


def _from_hex(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise ValueError(f"{name} must be {2 * size} lowercase hex digits, got {value!r}")
    return bytes.fromhex(value)


def sign_checkpoint(
    key: Ed25519PrivateKey, log_id: str, size: int, root_hash: bytes, timestamp: str
) -> Checkpoint:
    """Signs a checkpoint.

    Args:
        key: The log's signing key.
        log_id: Name of the log.
        size: Number of leaves.
        root_hash: 32-byte Merkle root over those leaves.
        timestamp: RFC 3339 UTC time ending in ``Z`` (see `expound.times.format_utc`).

    Returns:
        The signed checkpoint.

    Raises:
        ValueError: If a field is invalid (see `checkpoint_body`).
    """
    body = checkpoint_body(log_id, size, root_hash, timestamp)
    return Checkpoint(log_id, size, root_hash, timestamp, key.sign(body))


def verify_checkpoint(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """Checks a checkpoint's signature.

    Args:
        public_key: The log's public key.
        checkpoint: The checkpoint to check.

    Returns:
        True only when ``public_key`` signed exactly these fields. Invalid fields give False.
    """
    try:
        body = checkpoint.body()
    except ValueError:
        return False
    if len(checkpoint.signature) != _SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(checkpoint.signature, body)
    except InvalidSignature:
        return False
    return True


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Loads an unencrypted PKCS#8 PEM Ed25519 private key that only its owner can access.

    Args:
        path: The key file.

    Returns:
        The private key.

    Raises:
        PermissionError: If the file's group or other users have any access to it
            (it must be 0600 or 0400); a leaked signing key lets anyone forge checkpoints.
        ValueError: If the file is not a PEM private key or the key is not Ed25519.
        OSError: If the file cannot be read.
    """
    with open(path, "rb") as key_file:
        mode = stat.S_IMODE(os.fstat(key_file.fileno()).st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"{os.fspath(path)} has mode {mode:#o}: group or others can access the "
                "signing key; run chmod 0o600 on it"
            )
        pem = key_file.read()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{os.fspath(path)} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def generate_private_key_file(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Creates a new Ed25519 signing key in a new file with mode 0600.

    The file must not exist yet: replacing a log's key would orphan its checkpoints.

    Args:
        path: Where to write the unencrypted PKCS#8 PEM key.

    Returns:
        The new private key.

    Raises:
        FileExistsError: If ``path`` already exists.
        OSError: If the file cannot be written.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    # O_EXCL: the file is always created here, so its mode is 0600 (less any umask bits).
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(pem)
        key_file.flush()
        os.fsync(key_file.fileno())
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """Returns the public key as SubjectPublicKeyInfo PEM, for publishing to verifiers.

    Args:
        key: A private key (its public half is used) or a public key.

    Returns:
        PEM bytes starting with ``-----BEGIN PUBLIC KEY-----``.
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parses a SubjectPublicKeyInfo PEM Ed25519 public key.

    Args:
        pem: The PEM bytes (as from `public_key_pem`).

    Returns:
        The public key.

    Raises:
        ValueError: If ``pem`` is not a PEM public key or the key is not Ed25519.
    """
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return key
