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
        self._running: set[asyncio.Task] = set()

    async def submit(self, items: list[Item]) -> Result:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        self._start_commits()
        return await future

    def close(self) -> None:
        self._threads.shutdown(wait=False)

    def _start_commits(self) -> None:
        while self._waiting and len(self._running) < self._committers:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            task = asyncio.create_task(self._commit_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._committed)

    def _committed(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._start_commits()

    async def _commit_batch(self, batch: list[tuple[list[Item], asyncio.Future]]) -> None:
        items = [item for items, _ in batch for item in items]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._threads, self._commit, items)
        except Exception as error:  # noqa: BLE001 - each webhook answers it (503)
            for _, future in batch:
                if not future.done():  # a webhook whose client went away
                    future.set_exception(error)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(result)
