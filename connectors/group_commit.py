"""Group commit: the deliveries that arrive while the inbox's writer is busy are stored
together in its next commit, on a thread of their own.

On SQLite, twenty webhooks at once used to take twenty commits, each waiting for a thread of
the default pool and then for SQLite's one writer: at 20 patients most of the ack was that
queueing (docs/benchmarks.md). Now a webhook that finds the writer busy waits for it and goes
into the next commit with every other webhook that came meanwhile: one transaction and one
flush for all of them, and half the ack's p99. A batch shares its outcome: stored, or the
error that answers each of its webhooks 503. With `max_batch=1` and several committers (as on
PostgreSQL, whose commits run side by side) each delivery is its own commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 64  # deliveries per commit: bounds one transaction's length


class GroupCommit(Generic[Item, Result]):
    """`await submit(items)` -> what `commit(all items of its batch)` returned. One event
    loop submits; `commit` runs on up to `committers` threads of this object's own."""

    def __init__(
        self,
        commit: Callable[[list[Item]], Result],
        committers: int = 1,
        max_batch: int = MAX_BATCH,
    ):
        self._commit = commit
        self._committers = committers
        self._max_batch = max_batch
        self._threads = ThreadPoolExecutor(committers, thread_name_prefix="intake-commit")
        self._waiting: list[tuple[list[Item], asyncio.Future]] = []
        self._in_flight = 0  # batches being committed
        self._tasks: set[asyncio.Task] = set()  # referenced until done

    async def submit(self, items: list[Item]) -> Result:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        self._start_commits()
        return await future

    def close(self) -> None:
        self._threads.shutdown(wait=False)

    def _start_commits(self) -> None:
        while self._waiting and self._in_flight < self._committers:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._in_flight += 1
            task = asyncio.create_task(self._commit_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _commit_batch(self, batch: list[tuple[list[Item], asyncio.Future]]) -> None:
        futures = [future for _, future in batch]
        items = [item for items, _ in batch for item in items]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._threads, self._commit, items)
        except (Exception, asyncio.CancelledError) as error:  # noqa: BLE001 - answered 503
            _settle(futures, error=error)  # cancelled: the loop is going away
            if isinstance(error, asyncio.CancelledError):
                raise
        else:
            _settle(futures, result)
        finally:
            # Counted here, not in a done callback, so the next batch starts at once (and a
            # loop closed right after its webhook was answered leaves nothing counted).
            self._in_flight -= 1
        self._start_commits()


def _settle(
    futures: list[asyncio.Future], result: object = None, error: BaseException | None = None
) -> None:
    for future in futures:
        if future.done():  # a webhook whose client went away
            continue
        if error is None:
            future.set_result(result)
        elif isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)
