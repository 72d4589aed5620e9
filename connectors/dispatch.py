"""Where the dialogue runs: its own thread and event loop, one message per sender at a time.

Rasa runs the model inside the event loop that calls it. If that were the web
server's loop, Meta's next webhook would wait behind every model call. So the web
server's loop only verifies, parses and queues (and answers Meta at once), while
this worker's loop runs the dialogue: messages of one sender in order, senders in
parallel up to a bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")


class DialogueWorker(Generic[Item]):
    """Runs `handle(item)` for submitted items: FIFO per key, at most `max_concurrency`
    at once overall, on a background thread with its own event loop."""

    def __init__(
        self,
        handle: Callable[[Item], Awaitable[None]],
        key: Callable[[Item], str],
        max_concurrency: int = 8,
        name: str = "dialogue",
    ):
        self._handle = handle
        self._key = key
        self._max_concurrency = max_concurrency
        self._queues: dict[str, deque[Item]] = {}
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._slots = asyncio.Semaphore(self._max_concurrency)
        self.loop.run_forever()

    def submit(self, item: Item) -> None:
        """Queues `item`; safe to call from any thread."""
        self.start()
        with self._pending_lock:
            self._pending += 1
            self._idle.clear()
        self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: Item) -> None:
        key = self._key(item)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(item)  # that sender's drain task will get to it, in order
            return
        self._queues[key] = deque([item])
        self.loop.create_task(self._drain(key))

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        while queue:
            item = queue[0]
            async with self._slots:
                try:
                    await self._handle(item)
                except Exception as error:
                    # The class only: an exception's message may quote what the patient wrote.
                    logger.error("dialogue turn failed: %s", type(error).__name__)
            queue.popleft()
            with self._pending_lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()
        del self._queues[key]

    def wait_idle(self, timeout: float) -> bool:
        """Blocks until every submitted item is handled (tests and graceful stops)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        if self._started:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
