"""An independent reader of C2SP signed notes and tlog-checkpoints, from the specifications.

Written from the text of https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint
alone, sharing no code with `expound.archive.checkpoint`, so that a test can check that
what the archive signs is what any standard verifier (a witness, Go's
golang.org/x/mod/sumdb/note) accepts. No PyPI package verifies signed notes with the
C2SP Ed25519 key id (sigstore's note code follows Rekor's own key-id rule), hence this one.

The rules implemented, quoted from the specifications:

* A note is text, a blank line, and one or more signature lines; the text ends in a
  newline and is split from the signatures at the last blank line ("\\n\\n").
* A signature line is U+2014 (em dash), a space, the key name, a space, and the base64
  of a 4-byte key id followed by the signature. Key names are non-empty, contain no
  Unicode spaces and no plus sign.
* A verifier key is ``<name>+<hex key id>+<base64(type byte || public key)>``; for Ed25519
  the type byte is 0x01 and the key id is the first 4 bytes of
  SHA-256(name || "\\n" || 0x01 || 32-byte public key).
* The signature is over the text (through its final newline). A signature whose name and
  key id match a known key and fails rejects the note; unknown keys are ignored.
* A checkpoint's text is: origin line, decimal tree size (no leading zeros), base64 root
  hash, then optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014"
ED25519 = 0x01


class NoteError(Exception):
    """The note or checkpoint is malformed, or no known key signed it."""


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_hash: bytes
    public_key: bytes


def parse_verifier_key(text: str) -> VerifierKey:
    name, key_hash_hex, encoded = text.split("+", 2)  # base64 may hold "+" too
    raw = base64.b64decode(encoded, validate=True)
    if raw[0] != ED25519 or len(raw) != 33:
        raise NoteError("not an Ed25519 verifier key")
    key_hash = bytes.fromhex(key_hash_hex)
    computed = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if computed != key_hash:
        raise NoteError("the verifier key's hash does not match its name and key")
    return VerifierKey(name, key_hash, raw[1:])


def open_note(note: str, keys: list[VerifierKey]) -> str:
    """The note's text once a known key's signature verifies (else NoteError)."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("no blank line before the signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(EM_DASH + " "):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, encoded = line[2:].partition(" ")
        if not name or "+" in name or re.search(r"\s", name):
            raise NoteError(f"bad key name {name!r}")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise NoteError("signature is not base64") from error
        if len(blob) < 5:
            raise NoteError("signature too short")
        key_hash, signature = blob[:4], blob[4:]
        for key in keys:
            if key.name != name or key.key_hash != key_hash:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, text.encode())
            except InvalidSignature as error:
                raise NoteError(f"signature by {name} does not verify") from error
            verified = True
    if not verified:
        raise NoteError("no known key signed the note")
    return text


@dataclass(frozen=True)
class TreeHead:
    origin: str
    size: int
    root_hash: bytes
    extensions: list[str]


def parse_checkpoint(text: str) -> TreeHead:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash, each ended by \\n")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not re.fullmatch(r"0|[1-9][0-9]*", size):
        raise NoteError("bad origin or tree size")
    root_hash = base64.b64decode(root, validate=True)
    if len(root_hash) != 32:
        raise NoteError("a SHA-256 root hash has 32 bytes")
    return TreeHead(origin, int(size), root_hash, lines[3:-1])
