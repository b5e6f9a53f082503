"""Files the archive creates are its owner's alone: 0600 files in 0700 directories.

The archive holds applicants' personal data and the signing key signs for the log, so
nothing it writes is readable by the group or other users, whatever the process umask.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PRIVATE_UMASK = 0o077


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Creates files inside the block with no group or other bits.

    The umask is process-wide: the block is kept short (opening a file), so a file
    another thread creates meanwhile is at worst more private than it asked.
    """
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_directory(path: Path) -> None:
    """Creates ``path`` (and missing parents) with mode 0700; an existing one is kept.

    An existing directory is not tightened: it may be shared on purpose (e.g. the
    service's home); what the archive creates inside it is private either way.
    """
    if path.is_dir():
        return
    with private_umask():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
