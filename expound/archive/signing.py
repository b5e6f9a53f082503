"""Who signs the archive's checkpoints, and when.

The key is reached through one small interface, `Signer` (its public key, and signing
bytes), so a KMS or PKCS#11 module can stand in for today's implementation: a key file
outside the database (`expound.archive.checkpoint` checks its mode). The key's name in a
signed note is the log id (the C2SP convention: the origin names its key).

Checkpoints are signed on the writer's schedule, never by a read: inside the append that
makes one due (every ``every_records`` leaves, or ``every_seconds`` after the last one),
and by the service's `publish_checkpoints` task, so a quiet log is covered too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import (
    Checkpoint,
    Signer,
    generate_private_key_file,
    key_id_of,
    load_private_key,
    sign_checkpoint,
    verify_checkpoint,
)
from expound.archive.files import private_directory
from expound.errors import ArchiveUnavailable, ServiceError
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
        private_directory(path.parent)
        log.warning("created a new archive signing key at %s", path)
        return generate_private_key_file(path)
    return load_private_key(path)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Signs checkpoints of one log.

    Attributes:
        log_id: The log's name (the checkpoint's origin and the key's name).
        key: The signing key.
        every_records: Sign once this many leaves are not yet covered.
        every_seconds: Sign on an append this long after the last checkpoint.
    """

    log_id: str
    key: Signer
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

    def sign_after(
        self, last: Checkpoint | None, size: int, root: bytes, now: datetime | None = None
    ) -> Checkpoint:
        """Signs (log id, size, root) after ``last``, read under the log's write lock.

        Replicas share one log; each must sign with the log's one key. Two replicas that
        started on an empty log with ``signing_key_create`` and no shared key file would
        each make their own, so a checkpoint by another key stops this one signing.

        Raises:
            ArchiveUnavailable: ``last`` was signed by another key.
        """
        if last is not None and last.key_id and last.key_id != self.key_id:
            raise ArchiveUnavailable(
                "another key signs this log's checkpoints: give every replica the log's one "
                "signing key (EXPOUND_SIGNING_KEY_PATH)"
            )
        return self.sign(size, root, now)

    @functools.cached_property
    def key_id(self) -> bytes:
        """The signed-note key id of this policy's key."""
        return key_id_of(self.log_id, self.key.public_key())

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


async def publish_checkpoints(
    publish: Callable[[], Awaitable[Checkpoint | None]], every_seconds: float
) -> None:
    """Signs a checkpoint whenever one is due, until cancelled: the writer's schedule.

    Polls four times per interval, so every entry is covered within 1.25 intervals even
    when no append comes after it. A failure is logged and retried at the next poll.

    Args:
        publish: The store's ``publish_checkpoint``.
        every_seconds: The checkpoint interval.
    """
    while True:
        await asyncio.sleep(every_seconds / 4)
        try:
            await publish()
        except ServiceError as error:
            log.warning("could not sign a checkpoint: %s", error)


async def publish_final(publish: Callable[[bool], Awaitable[Checkpoint | None]]) -> None:
    """Signs the entries no checkpoint covers yet, as the service stops (logged if it fails)."""
    try:
        await publish(True)
    except ServiceError as error:
        log.warning("could not sign the last checkpoint: %s", error)
