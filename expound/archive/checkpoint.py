"""Signed checkpoints of the archive log, and the Ed25519 keys that sign them.

A checkpoint commits the log operator to one state of the log: its id, its size and its
Merkle root at a point in time. Anyone holding the public key can check a checkpoint, then
check inclusion and consistency proofs against it (see `expound.archive.merkle`).

Checkpoints are C2SP tlog-checkpoint notes (https://c2sp.org/tlog-checkpoint), signed as
C2SP signed notes (https://c2sp.org/signed-note), so standard witnesses and verifiers check
them. The signed text is, each line ended by ``\n``::

    <origin: the log id>
    <size, decimal, no sign or leading zeros>
    <root hash, standard base64 with padding>
    timestamp <RFC 3339 in UTC ending in "Z">       (one extension line)

and the signed note appends a blank line and ``— <key name> <base64(key id || signature)>``,
where the key name is the origin and the key id is the first 4 bytes of
SHA-256(name || 0x0A || 0x01 || Ed25519 public key). The log id is therefore a key name:
printable ASCII without spaces or ``+``.

Checkpoints signed before this format (``key_id`` empty) signed the five-line body
``expound-checkpoint/v1``, log id, size, base64 root, timestamp; `verify_checkpoint` still
reads them, so published checkpoints and proof bundles stay verifiable.

Fields that could make two different checkpoints share one text (a log id holding a newline,
a timestamp in another zone) are refused, so one text always means one checkpoint.

In JSON (`Checkpoint.to_json`) every byte string is lowercase hex: ``root_hash`` (64 hex
digits), ``signature`` (128) and ``key_id`` (8, absent for the old format); numbers and
text are as in the dataclass.

Private keys are unencrypted PKCS#8 PEM files that only their owner may read: `load_private_key`
refuses a file that its group or other users can access in any way, and
`generate_private_key_file` creates one with mode 0600 and never overwrites.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from expound.times import parse_utc

__all__ = [
    "LEGACY_HEADER",
    "Checkpoint",
    "Signer",
    "checkpoint_body",
    "generate_private_key_file",
    "key_id_of",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "sign_checkpoint",
    "signature_problem",
    "verifier_key",
    "verify_checkpoint",
]

LEGACY_HEADER = "expound-checkpoint/v1"
"""First line of the bodies signed before checkpoints were C2SP notes (still verified)."""
SIGNATURE_PREFIX = "\u2014 "
"""A signed note's signature lines start with an em dash and a space."""
ED25519_ALGORITHM = b"\x01"
"""The signed-note signature type byte of Ed25519."""
_KEY_ID_SIZE = 4


class Signer(Protocol):
    """An Ed25519 signing key, wherever it lives (a file today; a KMS or HSM tomorrow).

    `cryptography`'s Ed25519PrivateKey is one, as `load_private_key` returns it. Its name
    in a signed note is the log id.
    """

    def public_key(self) -> Ed25519PublicKey:
        """The public half, for verifiers."""
        ...

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``data``."""
        ...


_ROOT_HASH_SIZE = 32
_SIGNATURE_SIZE = 64
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_HEX = re.compile(r"[0-9a-f]*")
_JSON_FIELDS = frozenset({"log_id", "size", "root_hash", "timestamp", "signature"})
_KEY_NAME = re.compile(r"[!-*,-~]+")  # printable ASCII without space or "+"


def _check_fields(log_id: str, size: int, root_hash: bytes, timestamp: str) -> None:
    if not isinstance(log_id, str) or not _KEY_NAME.fullmatch(log_id):
        raise ValueError(
            f"log_id must be printable ASCII without spaces or '+' (a signed-note key name), "
            f"got {log_id!r}"
        )
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
    """Returns the C2SP checkpoint text a signature covers (format in the module docstring).

    Args:
        log_id: The log's origin, also the signing key's name.
        size: Number of leaves in the log.
        root_hash: The 32-byte Merkle root at that size.
        timestamp: RFC 3339 time in UTC, ending in ``Z`` (see `expound.times.format_utc`).

    Returns:
        The UTF-8 text.

    Raises:
        ValueError: If a field is invalid or could make the text ambiguous.
    """
    _check_fields(log_id, size, root_hash, timestamp)
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{log_id}\n{size}\n{root}\ntimestamp {timestamp}\n".encode()


def legacy_checkpoint_body(log_id: str, size: int, root_hash: bytes, timestamp: str) -> bytes:
    """The ``expound-checkpoint/v1`` body that checkpoints without a key id signed."""
    _check_fields(log_id, size, root_hash, timestamp)
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{LEGACY_HEADER}\n{log_id}\n{size}\n{root}\n{timestamp}\n".encode()


def key_id_of(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The signed-note key id: SHA-256(name || 0x0A || 0x01 || public key), first 4 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(name.encode() + b"\n" + ED25519_ALGORITHM + raw).digest()
    return digest[:_KEY_ID_SIZE]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key ``<name>+<hex key id>+<base64(0x01 || key)>``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    encoded = base64.b64encode(ED25519_ALGORITHM + raw).decode("ascii")
    return f"{name}+{key_id_of(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that log ``log_id`` had ``size`` leaves with root ``root_hash``.

    Attributes:
        log_id: Name of the log.
        size: Number of leaves.
        root_hash: 32-byte Merkle root over those leaves.
        timestamp: When it was signed, RFC 3339 in UTC ending in ``Z``.
        signature: 64-byte Ed25519 signature over `body`.
        key_id: The signed-note key id of the signing key; empty for a checkpoint signed
            in the old ``expound-checkpoint/v1`` format.
    """

    log_id: str
    size: int
    root_hash: bytes
    timestamp: str
    signature: bytes
    key_id: bytes = b""

    def body(self) -> bytes:
        """Returns the signed bytes: the C2SP text, or the old body for an old checkpoint."""
        if not self.key_id:
            return legacy_checkpoint_body(self.log_id, self.size, self.root_hash, self.timestamp)
        return checkpoint_body(self.log_id, self.size, self.root_hash, self.timestamp)

    def note(self) -> str:
        """The C2SP signed note: the checkpoint text, a blank line, its signature line.

        Raises:
            ValueError: For a checkpoint in the old format, which is no signed note.
        """
        if len(self.key_id) != _KEY_ID_SIZE:
            raise ValueError("a checkpoint in the old expound-checkpoint/v1 format has no note")
        signature = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{self.body().decode()}\n{SIGNATURE_PREFIX}{self.log_id} {signature}\n"

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-ready dict; byte strings are lowercase hex (no ``key_id`` if old)."""
        data: dict[str, Any] = {
            "log_id": self.log_id,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "signature": self.signature.hex(),
        }
        if self.key_id:
            data["key_id"] = self.key_id.hex()
        return data

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
        unknown = sorted(data.keys() - _JSON_FIELDS - {"key_id"})
        if missing or unknown:
            raise ValueError(f"checkpoint JSON: missing fields {missing}, unknown fields {unknown}")
        root_hash = _from_hex(data["root_hash"], "root_hash", _ROOT_HASH_SIZE)
        signature = _from_hex(data["signature"], "signature", _SIGNATURE_SIZE)
        log_id, size, timestamp = data["log_id"], data["size"], data["timestamp"]
        key_id = _from_hex(data["key_id"], "key_id", _KEY_ID_SIZE) if "key_id" in data else b""
        _check_fields(log_id, size, root_hash, timestamp)
        return cls(log_id, size, root_hash, timestamp, signature, key_id)


def _from_hex(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise ValueError(f"{name} must be {2 * size} lowercase hex digits, got {value!r}")
    return bytes.fromhex(value)


def sign_checkpoint(
    key: Signer, log_id: str, size: int, root_hash: bytes, timestamp: str
) -> Checkpoint:
    """Signs a checkpoint.

    Args:
        key: The log's signing key (an Ed25519PrivateKey or any `Signer`).
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
    key_id = key_id_of(log_id, key.public_key())
    return Checkpoint(log_id, size, root_hash, timestamp, key.sign(body), key_id)


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
    if checkpoint.key_id and checkpoint.key_id != key_id_of(checkpoint.log_id, public_key):
        return False
    try:
        public_key.verify(checkpoint.signature, body)
    except InvalidSignature:
        return False
    return True


def signature_problem(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> str:
    """Why ``checkpoint`` does not verify under ``public_key``, for a person to act on:
    a checkpoint signed by another key (its key id says so: the key of another archive, or
    of another log name, was given) is told apart from a signature that is simply wrong."""
    if checkpoint.key_id:
        given = key_id_of(checkpoint.log_id, public_key)
        if checkpoint.key_id != given:
            return (
                f"it was signed by key {checkpoint.key_id.hex()} of log {checkpoint.log_id!r}, "
                f"and the key given is {given.hex()}: another archive's key (check "
                "EXPOUND_HOME or --key where the public key was taken)"
            )
    return "its signature does not verify under this key: the checkpoint was altered"


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
