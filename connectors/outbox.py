"""Sending what the outbox holds (clinic/outbox.py), on the caller's event loop: a turn's
replies, reminders, and whatever waits for no one (due retries, a dead server's rows).

One retry policy for all of them: an answer Graph refuses for good is kept as failed (a dead
letter); one that has to wait (throttled, Graph down) goes back to the outbox with the time of
its next try, the recipient's later ones behind it, and whichever server's poller runs then
takes them, in order; past `OUTBOX_RETRY_SECONDS` it is failed too. The Graph calls and the
database calls are blocking: they run in the given executor.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import timedelta
from typing import Any

from clinic.audit import hash_id
from clinic.outbox import Outbox, OutboxItem
from connectors.graph_api import GraphApiClient
from connectors.graph_messages import request_body, typing_body
from connectors.graph_outcomes import Rejected, RetryPolicy, Sent, describe

logger = logging.getLogger(__name__)

RETRY_POLICY = RetryPolicy(base=0.5, cap=20.0)
POLL_LIMIT = 32


class OutboxSender:
    """Sends rows leased to this owner (`send`) and claims the others when due (`poll`).
    `held` is what it holds now: the channel renews those leases while they are sent."""

    def __init__(
        self,
        outbox: Outbox,
        graph: GraphApiClient,
        retry_budget: timedelta,
        hash_key: str,
        executor: Executor | None = None,
        rng: random.Random | None = None,
    ):
        self.outbox = outbox
        self.held: set[int] = set()
        self._graph = graph
        self._retry_budget = retry_budget
        self._hash_key = hash_key
        self._executor = executor
        self._rng = rng or random.Random()
        self._stopping = False
        self._typing: set[asyncio.Future] = set()

    async def _io(self, call: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def send(self, items: list[OutboxItem]) -> None:
        """Sends `items` (one recipient's, leased here) in order, then the recipient's next
        waiting ones. One that must wait holds the rest back: they go back to the outbox.
        Faults are logged: the leases run out and the rows are sent all the same."""
        self.held.update(item.id for item in items)
        try:
            while items and not self._stopping:
                for number, item in enumerate(items):
                    if not await self._try(item):
                        await self._io(self.outbox.release, [i.id for i in items[number + 1 :]])
                        return
                    self.held.discard(item.id)
                recipient = items[-1].recipient_id
                items = await self._io(self.outbox.claim, 1, None, recipient)
                self.held.update(item.id for item in items)
        except Exception as error:  # noqa: BLE001 - a fault costs a delay, never a message
            logger.error("outbox send failed: %s", type(error).__name__)
        finally:
            self.held.difference_update(item.id for item in items)

    async def poll(self) -> int:
        """Claims and sends what is due (at most one row per recipient at first); how many
        it claimed. None once stopping: a server on its way down would hold them."""
        if self._stopping:
            return 0
        items = await self._io(self.outbox.claim, POLL_LIMIT)
        await asyncio.gather(*(self.send([item]) for item in items))
        return len(items)

    def typing(self, recipient_id: str) -> None:
        """The typing indicator: best effort, never stored, never retried, never waited for."""
        task = asyncio.ensure_future(self._io(self._graph.post_once, typing_body(recipient_id)))
        self._typing.add(task)
        task.add_done_callback(self._typing.discard)

    async def close(self, timeout: float) -> None:
        """Stops taking rows; sends in flight may finish within `timeout`; what is still
        held then goes back to the outbox."""
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + timeout
        while self.held and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if self.held:
            await self._io(self.outbox.release, list(self.held))

    async def _try(self, item: OutboxItem) -> bool:
        """One try; True once the row is settled (sent, or failed for good)."""
        outcome = await self._io(self._graph.post_once, request_body(item.recipient_id, item.body))
        ref = hash_id(item.recipient_id, self._hash_key)
        if isinstance(outcome, Sent):
            await self._io(self.outbox.sent, item.id, item.recipient_id, outcome.message_id)
            return True
        if isinstance(outcome, Rejected):
            if "thread_control" in item.body and outcome.reason == "rejected":
                # Meta refuses thread control where Conversation Routing is not set up: the
                # hand-off message still goes, and staff answer from the inbox all the same.
                logger.warning("thread control refused: %s reply=%s", describe(outcome), item.id)
                return await self._try(replace(item, body=item.body["message"]))
            logger.warning("reply failed: %s reply=%s to=%s", describe(outcome), item.id, ref)
            await self._io(self.outbox.failed, item.id, describe(outcome), outcome.reason)
            return True
        if self.outbox.clock() - item.created_at >= self._retry_budget:
            logger.error("reply given up: %s reply=%s to=%s", describe(outcome), item.id, ref)
            await self._io(self.outbox.failed, item.id, "gave up: " + describe(outcome))
            return True
        delay = RETRY_POLICY.delay(item.attempts, outcome.retry_after, self._rng)
        logger.warning(
            "reply delayed: %s reply=%s recipient=%s retry in %.1f s",
            describe(outcome), item.id, ref, delay,
        )  # fmt: skip
        not_before = self.outbox.clock() + timedelta(seconds=delay)
        await self._io(self.outbox.retry_later, item.id, not_before, describe(outcome))
        return False
