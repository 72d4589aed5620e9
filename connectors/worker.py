"""The turns, as tasks on the rasa server's event loop: inbox items claimed per patient in
order, several patients at once up to a bound, each under a lease the channel renews."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from clinic.delivery import InboxItem

logger = logging.getLogger(__name__)


class InboxWorker:
    """Runs `handle(item)` (True when the patient's next message waits) for claimed items,
    at most `max_concurrency` at once. A claim is a costly query, so it runs only when
    something may wait unclaimed: the intake left messages (`wake`), a turn's patient has
    another, the last claim filled every free place, or the poll (leases that ran out,
    retries due, other replicas' messages)."""

    def __init__(
        self,
        handle: Callable[[InboxItem], Awaitable[bool]],
        claim: Callable[[int], Awaitable[list[InboxItem]]],
        max_concurrency: int,
        poll_seconds: float,
    ):
        self.running: dict[int, asyncio.Task] = {}
        self._handle, self._claim_items = handle, claim
        self._max_concurrency, self._poll_seconds = max_concurrency, poll_seconds
        self._claiming = False  # from `start` on
        self._maybe_waiting = True  # messages no one claimed may wait in the inbox
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task | None = None

    def start(self) -> None:
        """Starts claiming, on the running loop."""
        self._wake, self._claiming = asyncio.Event(), True
        self._main = asyncio.create_task(self._claim_loop())

    def wake(self) -> None:
        """New messages are in the inbox: claim now rather than at the next poll."""
        self._maybe_waiting = True
        if self._wake is not None:
            self._wake.set()

    def free(self) -> int:
        """How many more turns would run now (none before `start`)."""
        return max(0, self._max_concurrency - len(self.running)) if self._claiming else 0

    def run(self, items: list[InboxItem]) -> None:
        """Runs items already claimed for this worker (by the intake)."""
        for item in items:
            self.running[item.id] = asyncio.create_task(self._turn(item))

    async def drain(self, grace_seconds: float) -> list[int]:
        """Stops claiming; the turns in progress may finish within `grace_seconds`. The ids
        of those that did not (cancelled, for the caller to give back)."""
        self._claiming = False
        if self._main is not None:
            self._main.cancel()
        running = dict(self.running)
        if running:
            await asyncio.wait(list(running.values()), timeout=grace_seconds)
        unfinished = [item_id for item_id, task in running.items() if not task.done()]
        for item_id in unfinished:
            running[item_id].cancel()
        return unfinished

    def stop(self) -> None:
        """Cancels the claims and the turns in progress."""
        self._claiming = False
        for task in [self._main, *self.running.values()]:
            if task is not None:
                task.cancel()

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()
            free = self.free()
            if free and self._maybe_waiting:
                self._maybe_waiting = False  # a wake from now on asks for the next claim
                try:
                    items = await self._claim_items(free)
                except Exception as error:  # noqa: BLE001 - the database may be down: poll again
                    logger.warning("inbox claim failed: %s", type(error).__name__)
                    items, self._maybe_waiting = [], True
                self._maybe_waiting |= len(items) == free  # more may wait than there was room
                self.run(items)
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            except asyncio.TimeoutError:
                self._maybe_waiting = True

    async def _turn(self, item: InboxItem) -> None:
        try:
            if await self._handle(item):
                self._maybe_waiting = True
        except Exception as error:  # noqa: BLE001 - the class only: a message may quote the patient
            logger.error("dialogue turn failed: %s", type(error).__name__)
            self._maybe_waiting = True
        finally:
            self.running.pop(item.id, None)
            self._wake.set()  # the patient's next message may now be claimed
