"""Where the dialogue runs: a thread with its own event loop that claims inbox items.

Rasa runs the model inside the event loop that calls it. If that were the web server's loop,
Meta's next webhook would wait behind every model call. So the web server's loop only checks,
stores and acknowledges deliveries, and this worker claims them from the durable inbox: per
patient in order, several patients at once up to a bound, each claim under a lease it renews
while the turn runs. The replies' sender (and its poller) run on the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import uvloop

from clinic.delivery import Inbox, InboxItem

logger = logging.getLogger(__name__)


class InboxWorker:
    """Runs `handle(item)` for claimed inbox items, at most `max_concurrency` at once.
    `handle` returns True when the patient's next message waits in the inbox.

    A claim is a costly query, so it runs only when something may wait unclaimed: the
    intake left messages (`wake`), a turn's patient has another, the last claim filled
    every free place, or the poll (leases that ran out, retries due, other replicas')."""

    def __init__(
        self,
        inbox: Inbox,
        handle: Callable[[InboxItem], Awaitable[bool]],
        max_concurrency: int = 8,
        poll_seconds: float = 1.0,
        background: list[Callable[[], Awaitable[None]]] | None = None,
    ):
        self.inbox = inbox
        self._handle = handle
        self._max_concurrency = max_concurrency
        self._poll_seconds = poll_seconds
        self._background = background or []
        self._running: dict[int, asyncio.Task] = {}
        self._claiming = False  # from `start` on
        self._maybe_waiting = True  # messages no one claimed may wait in the inbox
        # uvloop, as Sanic's own loop: Rasa's calls to the action server are faster on it.
        self.loop = uvloop.new_event_loop()
        # Database calls and Rasa's own blocking work share this pool; the default one
        # would be as small as the machine.
        self.loop.set_default_executor(ThreadPoolExecutor(max_workers=4 * max_concurrency))
        self._wake = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="inbox-worker", daemon=True)
        self._stopped = threading.Event()

    def start(self) -> None:
        self._claiming = True
        self._thread.start()

    def started(self) -> bool:
        return self._thread.ident is not None

    def wake(self) -> None:
        """New messages are in the inbox: claim now rather than at the next poll. Any thread."""
        self._maybe_waiting = True
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.loop.call_soon_threadsafe(self._wake.set)

    def busy(self) -> bool:
        return bool(self._running)

    def free(self) -> int:
        """How many more turns would run now (read from any thread: an estimate); none
        before `start`, so the intake claims nothing for a worker that can't run it yet."""
        return max(0, self._max_concurrency - len(self._running)) if self._claiming else 0

    def run(self, items: list[InboxItem]) -> None:
        """Runs items already claimed for this worker (by the intake). Any thread."""
        self.loop.call_soon_threadsafe(self._start, items)

    def _start(self, items: list[InboxItem]) -> None:
        for item in items:
            self._running[item.id] = asyncio.create_task(self._turn(item))

    def call(self, coroutine: Awaitable, timeout: float | None = None):  # noqa: ANN201
        """Runs `coroutine` on the worker's loop from another thread; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def drain(self, grace_seconds: float) -> int:
        """Stops claiming, lets the turns in progress finish within `grace_seconds`, gives
        the unfinished ones back to the inbox; their number. From any loop."""
        future = asyncio.run_coroutine_threadsafe(self._drain(grace_seconds), self.loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self.wake()
            self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        tasks = [asyncio.create_task(job()) for job in [self._renew_leases, *self._background]]
        while not self._stopped.is_set():
            self._wake.clear()
            await self._claim()
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            except asyncio.TimeoutError:
                self._maybe_waiting = True
        for task in [*tasks, *self._running.values()]:
            task.cancel()

    async def _claim(self) -> None:
        free = self._max_concurrency - len(self._running)
        if not self._claiming or free <= 0 or not self._maybe_waiting:
            return
        self._maybe_waiting = False  # a wake from now on asks for the next claim
        try:
            items = await asyncio.to_thread(self.inbox.claim, free)
        except Exception as error:  # noqa: BLE001 - the database may be down: poll again
            logger.warning("inbox claim failed: %s", type(error).__name__)
            self._maybe_waiting = True
            return
        if len(items) == free:
            self._maybe_waiting = True  # more may wait than there was room for
        self._start(items)

    async def _turn(self, item: InboxItem) -> None:
        try:
            if await self._handle(item):
                self._maybe_waiting = True
        except Exception as error:  # noqa: BLE001 - the class only: a message may quote the patient
            logger.error("dialogue turn failed: %s", type(error).__name__)
            self._maybe_waiting = True
        finally:
            self._running.pop(item.id, None)
            self._wake.set()  # the patient's next message may now be claimed

    async def _renew_leases(self) -> None:
        interval = self.inbox.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.inbox.renew, list(self._running))
            except Exception as error:  # noqa: BLE001 - retried at the next beat
                logger.warning("inbox lease renewal failed: %s", type(error).__name__)

    async def _drain(self, grace_seconds: float) -> int:
        self._claiming = False
        running = dict(self._running)
        if running:
            await asyncio.wait(list(running.values()), timeout=grace_seconds)
        unfinished = [item_id for item_id, task in running.items() if not task.done()]
        for item_id in unfinished:
            running[item_id].cancel()
        if unfinished:
            await asyncio.to_thread(self.inbox.release, unfinished)
        return len(unfinished)
