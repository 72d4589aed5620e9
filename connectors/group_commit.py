"""Group commit: the deliveries that arrive while the inbox's writer is busy are stored
together in its next commit, on a thread of their own.

Twenty webhooks at once used to take twenty commits, each waiting for a thread of the
default pool and then, on SQLite, for its one writer: at 20 patients most of the ack was that
queueing (docs/benchmarks.md). Now a webhook that finds the writer busy waits for it and goes
into the next commit with every other webhook that came meanwhile: one transaction and one
flush for all of them. The inbox stores a batch with one statement per step
(`Inbox.accept`), so on PostgreSQL too a batch costs about what one delivery does. A batch
shares its outcome: stored, or the error that answers each of its webhooks 503. A webhook
that finds the writer idle is committed at once, as before.
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
    loop submits; `commit` runs on a thread of this object's own, one batch at a time."""

    def __init__(self, commit: Callable[[list[Item]], Result], max_batch: int = MAX_BATCH):
        self._commit = commit
        self._max_batch = max_batch
        self._threads = ThreadPoolExecutor(1, thread_name_prefix="intake-commit")
        self._waiting: list[tuple[list[Item], asyncio.Future]] = []
        self._committing = False
        self._tasks: set[asyncio.Task] = set()  # referenced until done

    async def submit(self, items: list[Item]) -> Result:
        if not self._committing and not self._waiting:
            # Nothing to wait for, nothing to group with: committed from here, with no task
            # between (each hop of the loop waits for the busy interpreter).
            return await self._run(items)
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        self._start_commits()
        return await future

    def close(self) -> None:
        self._threads.shutdown(wait=False)

    def _start_commits(self) -> None:
        while self._waiting and not self._committing:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._committing = True
            task = asyncio.create_task(self._commit_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _commit_batch(self, batch: list[tuple[list[Item], asyncio.Future]]) -> None:
        futures = [future for _, future in batch]
        try:
            result = await self._run([item for items, _ in batch for item in items])
        except (Exception, asyncio.CancelledError) as error:  # noqa: BLE001 - answered 503
            _settle(futures, error=error)  # cancelled: the loop is going away
            if isinstance(error, asyncio.CancelledError):
                raise
        else:
            _settle(futures, result)

    async def _run(self, items: list[Item]) -> Result:
        """One commit on the thread; then the next batch, if one waits."""
        self._committing = True
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._commit, items)
        finally:
            # Here, not in a done callback: the next batch starts at once, and a loop closed
            # right after its webhook was answered leaves nothing marked as committing.
            self._committing = False
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
