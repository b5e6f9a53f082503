"""Group commit's queue: cancelled callers, closing, and a commit that fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from expound.archive.grouping import GroupCommit
from expound.archive.records import NewRecord, StoredRecord
from expound.archive.store import DuplicateIdempotencyKey
from expound.errors import ArchiveUnavailable
from tests.support.archive_contract import new_record


class Log:
    """A commit function that records each group and can be held or made to fail."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def commit(self, records: Sequence[NewRecord]) -> list[StoredRecord]:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.groups.append([record.record_id for record in records])
        return [_stored(record, seq) for seq, record in enumerate(records)]


def _stored(record: NewRecord, seq: int) -> StoredRecord:
    from expound.archive.engine import stored_entry

    return stored_entry(record, seq)


async def test_a_caller_cancelled_before_its_group_is_taken_is_not_written() -> None:
    log = Log()
    grouping = GroupCommit(log.commit, max_group=8)
    log.gate.clear()  # the first group's commit is in flight until the gate opens
    first = asyncio.create_task(grouping.append(new_record(0)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    kept, dropped = new_record(1), new_record(2)
    waiting = asyncio.create_task(grouping.append(kept))
    cancelled = asyncio.create_task(grouping.append(dropped))
    await asyncio.sleep(0)
    cancelled.cancel()
    log.gate.set()
    await asyncio.gather(first, waiting)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert log.groups[1] == [kept.record_id], "the cancelled caller's record was left out"
    await grouping.aclose()


async def test_closing_answers_every_queued_append_first() -> None:
    log = Log()
    grouping = GroupCommit(log.commit, max_group=2)
    log.gate.clear()
    calls = [asyncio.create_task(grouping.append(new_record(n))) for n in range(5)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(grouping.aclose())
    await asyncio.sleep(0)
    assert not closing.done()
    log.gate.set()
    await closing
    assert all(call.done() for call in calls)
    assert [len(group) for group in log.groups] == [2, 2, 1]


async def test_a_failed_commit_fails_its_group_and_the_next_group_still_commits() -> None:
    log = Log()
    grouping = GroupCommit(log.commit, max_group=3)
    log.fail = ArchiveUnavailable("disk full")
    outcomes = await asyncio.gather(
        *[grouping.append(new_record(n, key="k" if n < 2 else "")) for n in range(3)],
        return_exceptions=True,
    )
    # The key's repeat is told the failure of its first, not that the key is taken.
    assert all(isinstance(o, ArchiveUnavailable) for o in outcomes), outcomes
    assert not any(isinstance(o, DuplicateIdempotencyKey) for o in outcomes)
    log.fail = None
    stored = await grouping.append(new_record(9))
    assert log.groups == [[stored.record_id]]
    await grouping.aclose()


def test_a_group_holds_at_least_one_record() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Log().commit, max_group=0)
