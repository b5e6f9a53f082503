"""Group commit: appends that arrive together are committed in one transaction.

While one group's transaction runs, new appends queue; when it commits, one task takes
up to ``max_group`` of them as the next group. Nothing waits on a timer: a lone append
goes out at once, and under load each commit (one fsync, one advisory lock, one round of
the log's frontier) is shared by every record that queued during the last one. Each caller
is answered only after the commit that holds its record; a failed transaction fails every
caller in it, and nothing of it is written.

An idempotency key taken twice in one group is written once: the second caller gets
`DuplicateIdempotencyKey` once the first is committed, as it would from a later
transaction. A key already in the log fails its group's transaction as the database's
constraint decides; the group is then committed again one record at a time, so only the
duplicate's caller sees the error.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from expound.archive.records import NewRecord, StoredRecord
from expound.archive.store import DuplicateIdempotencyKey

DEFAULT_MAX_GROUP = 64
"""Records per transaction at most: enough to share a commit among a burst of callers,
few enough that one transaction's statements stay well under a millisecond each."""

Commit = Callable[[Sequence[NewRecord]], Awaitable[list[StoredRecord]]]


@dataclass
class _Waiting:
    record: NewRecord
    answer: asyncio.Future[StoredRecord] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _answer(waiting: _Waiting, result: StoredRecord | BaseException) -> None:
    if waiting.answer.done():  # its caller was cancelled
        return
    if isinstance(result, asyncio.CancelledError):
        waiting.answer.cancel()
    elif isinstance(result, BaseException):
        waiting.answer.set_exception(result)
    else:
        waiting.answer.set_result(result)


class GroupCommit:
    """Queues appends and commits them in groups, one transaction at a time."""

    def __init__(self, commit: Commit, max_group: int = DEFAULT_MAX_GROUP) -> None:
        """Groups appends for ``commit``.

        Args:
            commit: Appends records in one transaction, all or none, in order.
            max_group: Records per transaction at most (at least 1).
        """
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._commit = commit
        self._max_group = max_group
        self._queue: list[_Waiting] = []
        self._drainer: asyncio.Task[None] | None = None
        self.groups = 0
        """Transactions committed or tried: appends / groups is the mean group size."""

    async def append(self, record: NewRecord) -> StoredRecord:
        """Appends ``record`` in the next group; returns once that group is committed.

        Raises:
            DuplicateIdempotencyKey: Its principal's key is already in the log or earlier in
                its group.
            Exception: Whatever failed its group's transaction.
        """
        waiting = _Waiting(record)
        self._queue.append(waiting)
        if self._drainer is None or self._drainer.done():
            # Its own context: the drainer commits for many callers, so no one caller's
            # request id or trace may follow it.
            self._drainer = asyncio.get_running_loop().create_task(
                self._drain(), context=contextvars.Context()
            )
        # A cancelled caller's future is cancelled with it; one not yet taken into a group
        # is then left out of it.
        return await waiting.answer

    async def _drain(self) -> None:
        try:
            while self._queue:
                taken = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                group = [waiting for waiting in taken if not waiting.answer.done()]
                if group:
                    await self._commit_group(group)
        except BaseException as error:  # cancelled as the loop stops: nobody waits forever
            for waiting in self._queue:
                _answer(waiting, error)
            self._queue.clear()
            raise

    async def _commit_group(self, group: list[_Waiting]) -> None:
        first: dict[tuple[str, str], _Waiting] = {}
        writing: list[_Waiting] = []
        repeats: list[tuple[_Waiting, _Waiting]] = []
        for waiting in group:
            record = waiting.record
            if not record.idempotency_key:
                writing.append(waiting)
                continue
            key = (record.principal, record.idempotency_key)
            if key in first:
                repeats.append((waiting, first[key]))
            else:
                first[key] = waiting
                writing.append(waiting)
        self.groups += 1
        try:
            stored = await self._commit([waiting.record for waiting in writing])
        except DuplicateIdempotencyKey as error:
            if len(writing) == 1:
                _answer(writing[0], error)
            else:
                # Which record's key was taken the database does not say: each alone.
                for waiting in writing:
                    await self._commit_group([waiting])
        except BaseException as error:
            for waiting in writing:
                _answer(waiting, error)
            for waiting, _ in repeats:
                _answer(waiting, error)
            if not isinstance(error, Exception):
                raise
            return
        else:
            for waiting, result in zip(writing, stored, strict=True):
                _answer(waiting, result)
        for waiting, earlier in repeats:
            # Answered after the commit that holds (or refused) the key's first record.
            settled = earlier.answer
            failed = None if settled.cancelled() else settled.exception()
            record = waiting.record
            _answer(
                waiting,
                failed or DuplicateIdempotencyKey(f"{record.principal}: {record.idempotency_key}"),
            )

    async def aclose(self) -> None:
        """Waits until every queued append is answered."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
