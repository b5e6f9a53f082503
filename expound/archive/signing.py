"""Who signs the archive's checkpoints, and when.

The signing key lives in a file outside the database (`expound.archive.checkpoint` checks
its mode). A store signs a checkpoint inside the append that makes one due: every
``every_records`` leaves, or on the first append ``every_seconds`` after the last one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import (
    Checkpoint,
    generate_private_key_file,
    load_private_key,
    sign_checkpoint,
    verify_checkpoint,
)
from expound.times import format_utc, parse_utc

log = logging.getLogger("expound.archive")


def load_signing_key(path: Path, create: bool) -> Ed25519PrivateKey:
    """Loads the log's signing key, creating it (mode 0600) when absent and allowed.

    Args:
        path: The PEM key file.
        create: Whether a missing file may be created; only for a log that has never been
            signed, since a new key orphans every earlier checkpoint.

    Returns:
        The private key.

    Raises:
        FileNotFoundError: If the file is missing and ``create`` is false.
        PermissionError: If others can read the file.
        ValueError: If the file is not an Ed25519 PEM key.
    """
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        log.warning("created a new archive signing key at %s", path)
        return generate_private_key_file(path)
    return load_private_key(path)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Signs checkpoints of one log.

    Attributes:
        log_id: The log's name, in every checkpoint.
        key: The signing key.
        every_records: Sign once this many leaves are not yet covered.
        every_seconds: Sign on an append this long after the last checkpoint.
    """

    log_id: str
    key: Ed25519PrivateKey
    every_records: int
    every_seconds: float

    def due(self, last: Checkpoint | None, size: int, now: datetime) -> bool:
        """Whether a log of ``size`` leaves needs a new checkpoint after ``last``."""
        if last is None:
            return size > 0
        if size <= last.size:
            return False
        if size - last.size >= self.every_records:
            return True
        signed_at = parse_utc(last.timestamp)
        return (now - signed_at).total_seconds() >= self.every_seconds

    def sign(self, size: int, root: bytes, now: datetime | None = None) -> Checkpoint:
        """Signs (log id, size, root) at ``now``."""
        return sign_checkpoint(
            self.key, self.log_id, size, root, format_utc(now or datetime.now(UTC))
        )

    def check_owned(self, checkpoint: Checkpoint | None) -> None:
        """Refuses a key or log id that did not sign the log's latest checkpoint.

        Raises:
            ValueError: If ``checkpoint`` was signed by another key or for another log.
        """
        if checkpoint is None:
            return
        if checkpoint.log_id != self.log_id:
            raise ValueError(
                f"the archive is log {checkpoint.log_id!r}, settings name {self.log_id!r}"
            )
        if not verify_checkpoint(self.key.public_key(), checkpoint):
            raise ValueError("the signing key did not sign this archive's checkpoints")
