"""Static bearer tokens, stored hashed in a file the operator manages.

A token is ``exp_`` and 43 URL-safe base64 characters: 256 random bits (``expound auth
token`` makes one; the prefix lets secret scanners recognise a leaked one). The server
keeps only its SHA-256, one line per token in ``EXPOUND_TOKENS_FILE``::

    # <principal> sha256:<hex digest of the token>   (blank lines and # comments ignored)
    loan-app sha256:8f43...e1

Why SHA-256 and not a password hash (bcrypt, scrypt, Argon2): those slow down guessing of
low-entropy secrets. A 256-bit random token has no dictionary to guess from, so a slow hash
adds nothing but milliseconds per call; a stolen file still gives no token (preimage
resistance). The presented token's digest is compared with every stored one in constant
time (``hmac.compare_digest``, no early exit), so timing says nothing about stored digests.

The file is reread when it changes (size, mtime or inode), checked on each call: removing a
line revokes that token for the next call, with no restart. A malformed line is skipped
with an ERROR in the log on reread (never taking down the other tokens); at start-up it is
refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("expound.server")

TOKEN_PREFIX = "exp_"
TOKEN_BYTES = 32
_LINE = re.compile(r"^(?P<principal>\S+)\s+sha256:(?P<digest>[0-9a-f]{64})\s*(?:#.*)?$")


def new_token() -> str:
    """A fresh token: the prefix and 256 random bits, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token, as the tokens file stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_line(principal: str, token: str) -> str:
    """The tokens-file line that lets ``token`` authenticate as ``principal``."""
    if not principal or any(c.isspace() for c in principal) or principal.startswith("#"):
        raise ValueError(f"principal {principal!r}: one word, not starting with #")
    return f"{principal} sha256:{token_digest(token)}"


@dataclass(frozen=True)
class _Entry:
    principal: str
    digest: bytes


def parse_tokens(text: str, where: str, strict: bool) -> list[_Entry]:
    """The entries of a tokens file; a bad line raises when ``strict``, else is logged.

    Raises:
        ValueError: With ``strict``, naming ``where`` and the line number.
    """
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            problem = f"{where} line {number}: expected '<principal> sha256:<64 hex digits>'"
            if strict:
                raise ValueError(problem)
            log.error("%s (line skipped)", problem)
            continue
        entries.append(_Entry(match["principal"], bytes.fromhex(match["digest"])))
    return entries


class TokenFile:
    """The tokens of ``EXPOUND_TOKENS_FILE``, reread when the file changes."""

    def __init__(self, path: Path) -> None:
        """Reads the file.

        Raises:
            ValueError: Naming ``EXPOUND_TOKENS_FILE``: unreadable, or a malformed line.
        """
        self._path = path
        self._where = f"EXPOUND_TOKENS_FILE {path}"
        try:
            self._stamp = self._stat()
            self._entries = parse_tokens(path.read_text(encoding="utf-8"), self._where, True)
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{self._where}: cannot read: {error}") from error

    def _stat(self) -> tuple[int, int, int]:
        stat = os.stat(self._path)
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _refresh(self) -> None:
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return
            text = self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            # Gone or unreadable: no token is valid until it is back (fail closed).
            if self._entries:
                log.error("%s: cannot read (%s): every token refused", self._where, error)
            self._entries, self._stamp = [], (0, 0, 0)
            return
        self._entries, self._stamp = parse_tokens(text, self._where, False), stamp
        log.info("%s reread: %d token(s)", self._where, len(self._entries))

    def principal_of(self, token: str) -> str | None:
        """The principal ``token`` authenticates, or None for an unknown or revoked one."""
        self._refresh()
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: str | None = None
        for entry in self._entries:
            # Every entry is compared, matched or not: the time taken depends on the number
            # of entries only.
            if hmac.compare_digest(presented, entry.digest):
                found = entry.principal
        return found
