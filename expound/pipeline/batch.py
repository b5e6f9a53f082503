"""Many items through one async function, a bounded number at once, answered in order.

The batch RPC's engine, transport-free: :func:`in_order` reads items as room frees up,
starts each at once, and yields the results in the order the items came. Reading runs on
its own task so that a caller who sends one item and waits for its answer before sending
the next is answered (a window that waited to fill first would hang that caller).

At most ``limit`` items are started and not yet yielded: a fast sender waits for room (on
gRPC, flow control pushes back on the client), and a slow reader of the results holds the
window, not the server's memory. Closing the iterator early (the caller went away) cancels
every item still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _End:
    """The reader's last word: the items ran out, or reading them failed with ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def in_order(
    items: AsyncIterable[Item],
    work: Callable[[Item], Awaitable[Result]],
    limit: int,
) -> AsyncIterator[Result]:
    """The result of ``work`` on each item, in the items' order, ``limit`` items at once.

    ``work`` should answer every item (turn its failures into results): an exception it
    raises ends the iteration, like one raised while reading the items.

    Raises:
        ValueError: ``limit`` below 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    room = asyncio.Semaphore(limit)
    started: asyncio.Queue[asyncio.Task[Result] | _End] = asyncio.Queue()

    async def read() -> None:
        try:
            async for item in items:
                await room.acquire()
                started.put_nowait(asyncio.ensure_future(work(item)))
        except Exception as error:
            started.put_nowait(_End(error))
        else:
            started.put_nowait(_End())

    reader = asyncio.create_task(read())
    running: list[asyncio.Future[Any]] = [reader]
    try:
        while not isinstance(head := await started.get(), _End):
            running.append(head)  # cancelled below should the caller stop awaiting it
            result = await head
            running.pop()
            room.release()
            yield result
        if head.error is not None:
            raise head.error
    finally:
        for task in running:
            task.cancel()
        while not started.empty():
            queued = started.get_nowait()
            if isinstance(queued, asyncio.Task):
                queued.cancel()
                running.append(queued)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*running, return_exceptions=True)
