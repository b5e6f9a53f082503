"""Opens the archive the settings name, with its signing key and retention policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import LogArchive
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy, load_signing_key
from expound.errors import ArchiveUnavailable
from expound.settings import Settings


def signer_for(settings: Settings) -> Callable[[Checkpoint | None], CheckpointPolicy]:
    """Builds the checkpoint policy once the store knows its latest checkpoint.

    A missing key file is created only for a log that was never signed: a new key would
    orphan every earlier checkpoint. A key or log id that did not sign the latest
    checkpoint is refused.
    """

    def build(latest: Checkpoint | None) -> CheckpointPolicy:
        create = settings.signing_key_create and latest is None
        try:
            key = load_signing_key(settings.signing_key_path, create)
            policy = CheckpointPolicy(
                settings.archive_log_id,
                key,
                settings.checkpoint_every_records,
                settings.checkpoint_every_seconds,
            )
            policy.check_owned(latest)
        except (OSError, ValueError) as exc:
            raise ArchiveUnavailable(f"archive signing key: {exc}") from exc
        return policy

    return build


def retention_policy(settings: Settings) -> RetentionPolicy:
    """The retention periods the settings name."""
    return RetentionPolicy(settings.retention_months, dict(settings.retention_months_by_model))


async def open_archive(
    settings: Settings, role: Literal["service", "audit"] = "service"
) -> LogArchive:
    """Opens the configured store; close it with ``aclose``.

    Args:
        settings: The service's settings.
        role: ``service`` signs with the settings' key; ``audit`` opens the log to be read,
            with no signing key (and, for SQLite, the file read-only).
    """
    signer = None if role == "audit" else signer_for(settings)
    if settings.archive_backend == "postgres":
        from expound.archive.postgres import open_postgres

        return await open_postgres(
            settings.archive_dsn,
            signer,
            retention_policy(settings),
            max_connections=settings.archive_max_connections,
            max_group=settings.archive_group_max,
        )
    from expound.archive.sqlite import open_sqlite

    return await open_sqlite(
        settings.archive_path, signer, retention_policy(settings), settings.archive_group_max
    )
