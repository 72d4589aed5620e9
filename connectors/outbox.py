"""Sending what the outbox holds (clinic/outbox.py), blocking: a turn's replies, reminders,
due retries, a dead server's rows. One retry policy for all: refused for good, or still
failing past `OUTBOX_RETRY_SECONDS`, a message is kept as failed (a dead letter); one that
has to wait goes back to the outbox with its next try (`backoff`), later ones behind it."""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import timedelta

from clinic.audit import hash_id
from clinic.outbox import Outbox, OutboxItem
from connectors.graph_api import GraphApiClient
from connectors.graph_messages import request_body, typing_body
from connectors.graph_outcomes import Rejected, Sent, describe

logger = logging.getLogger(__name__)

POLL_LIMIT = 32


def backoff(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds before the next try after try `attempt` (the first is 1): Graph's Retry-After
    (at most 60 s), else full jitter, uniform in [0, min(20, 0.5 * 2 ** (attempt - 1))]."""
    if retry_after is not None:
        return min(retry_after, 60.0)
    return rng.uniform(0.0, min(20.0, 0.5 * 2 ** min(attempt - 1, 64)))


class OutboxSender:
    """Sends rows leased to this owner (`send`), or claims what is due and sends it (`poll`).
    `held` is what it holds now: the rasa server renews those leases while they are sent."""

    def __init__(
        self,
        outbox: Outbox,
        graph: GraphApiClient,
        retry_budget: timedelta,
        hash_key: str,
        rng: random.Random | None = None,
    ):
        self.outbox = outbox
        self.held: set[int] = set()
        self.stopping = False  # a server on its way down claims nothing more
        self._graph = graph
        self._retry_budget = retry_budget
        self._hash_key = hash_key
        self._rng = rng or random.Random()

    def send(self, items: list[OutboxItem]) -> None:
        """Sends `items` (one recipient's, leased here) in order, then the recipient's next
        waiting ones. One that must wait holds the rest back: they go back to the outbox.
        Faults are logged: the leases run out and the rows are sent all the same."""
        self.held.update(item.id for item in items)
        try:
            while items and not self.stopping:
                for number, item in enumerate(items):
                    another_waits = self._try(item)
                    if another_waits is None:
                        self.outbox.release([i.id for i in items[number + 1 :]])
                        return
                    self.held.discard(item.id)
                if not another_waits:
                    return
                items = self.outbox.claim(1, None, items[-1].recipient_id)
                self.held.update(item.id for item in items)
        except Exception as error:  # noqa: BLE001 - a fault costs a delay, never a message
            logger.error("outbox send failed: %s", type(error).__name__)
        finally:
            self.held.difference_update(item.id for item in items)

    def claim_due(self) -> list[OutboxItem]:
        """What is due and first in line for its recipient (one row each); none once stopping."""
        return [] if self.stopping else self.outbox.claim(POLL_LIMIT)

    def poll(self) -> int:
        """Claims what is due and sends it, one recipient after the other; how many it claimed."""
        items = self.claim_due()
        for item in items:
            self.send([item])
        return len(items)

    def typing(self, recipient_id: str) -> None:
        """The typing indicator: best effort, never stored, never retried."""
        self._graph.post_once(typing_body(recipient_id))

    def _try(self, item: OutboxItem) -> bool | None:
        """One try; None when the row must wait, else whether another to the recipient may
        wait behind it (sent, or failed for good)."""
        outcome = self._graph.post_once(request_body(item.recipient_id, item.body))
        if isinstance(outcome, Sent):
            return self.outbox.sent(item.id, item.recipient_id, outcome.message_id)
        ref = hash_id(item.recipient_id, self._hash_key)
        if isinstance(outcome, Rejected):
            if "thread_control" in item.body and outcome.reason == "rejected":
                # Meta refuses thread control where Conversation Routing is not set up: the
                # hand-off message still goes, and staff answer from the inbox all the same.
                logger.warning("thread control refused: %s reply=%s", describe(outcome), item.id)
                return self._try(replace(item, body=item.body["message"]))
            logger.warning("reply failed: %s reply=%s to=%s", describe(outcome), item.id, ref)
            self.outbox.failed(item.id, describe(outcome), outcome.reason)
            return True
        if self.outbox.clock() - item.created_at >= self._retry_budget:
            logger.error("reply given up: %s reply=%s to=%s", describe(outcome), item.id, ref)
            self.outbox.failed(item.id, "gave up: " + describe(outcome))
            return True
        delay = backoff(item.attempts, outcome.retry_after, self._rng)
        logger.warning(
            "reply delayed: %s reply=%s to=%s retry in %.1f s",
            describe(outcome),
            item.id,
            ref,
            delay,
        )
        not_before = self.outbox.clock() + timedelta(seconds=delay)
        self.outbox.retry_later(item.id, not_before, describe(outcome))
        return None
