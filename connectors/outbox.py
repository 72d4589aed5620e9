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
from clinic.outbox import SMS, Outbox, OutboxItem
from connectors.graph_api import GraphApiClient
from connectors.graph_messages import request_body, typing_body
from connectors.graph_outcomes import Outcome, Rejected, Sent, describe
from connectors.sms_client import OPTED_OUT, TwilioTexts

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
        graph: GraphApiClient | None,
        retry_budget: timedelta,
        hash_key: str,
        rng: random.Random | None = None,
        texts: TwilioTexts | None = None,
        texts_per_second: float = 1.0,
    ):
        self.outbox = outbox
        self.held: set[int] = set()
        self.stopping = False  # a server on its way down claims nothing more
        self._graph = graph
        self._texts = texts
        self._text_interval = timedelta(seconds=1 / texts_per_second)
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
        """Claims what is due and sends it, one recipient after the other; how many it claimed.
        What is still unsent when half the lease has gone (texts wait for their pace) goes
        back, before another sender could take it over."""
        items = self.claim_due()
        started = self.outbox.clock()
        for number, item in enumerate(items):
            if self.outbox.clock() - started > self.outbox.lease / 2:
                self.outbox.release([i.id for i in items[number:]])
                break
            self.send([item])
        return len(items)

    def typing(self, recipient_id: str) -> None:
        """The typing indicator: best effort, never stored, never retried."""
        self._graph.post_once(typing_body(recipient_id))

    def _try(self, item: OutboxItem) -> bool | None:
        """One try; None when the row must wait, else whether another to the recipient may
        wait behind it (sent, or failed for good)."""
        if item.channel == SMS:
            outcome = self._text(item)
        else:
            outcome = self._graph.post_once(request_body(item.recipient_id, item.body))
        if isinstance(outcome, Sent):
            mid = outcome.message_id
            return self.outbox.sent(item.id, item.recipient_id, mid, item.channel)
        ref = hash_id(item.recipient_id, self._hash_key)
        if isinstance(outcome, Rejected) and outcome.code == OPTED_OUT and item.channel == SMS:
            # The number replied STOP at the carrier: no text goes to it any more.
            logger.warning("text refused: recipient opted out reply=%s to=%s", item.id, ref)
            self.outbox.opted_out(item.id, item.recipient_id)
            return True
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

    def _text(self, item: OutboxItem) -> Outcome:
        """A text through Twilio, at the pace of TWILIO_MESSAGES_PER_SECOND over every sender.
        A row whose earlier try may have gone through (the process died before recording
        Twilio's answer) is first looked for at Twilio: never sent twice."""
        body = item.body.get("text", "")
        if self._texts is None:
            return Rejected(None, None, 0)  # Twilio is not set up here: kept as failed
        if item.tried_at is not None:
            since = item.tried_at - timedelta(minutes=1)  # Twilio's clock against ours
            earlier = self._texts.earlier_try(item.recipient_id, body, since)
            if earlier is not None:
                return earlier
        self.outbox.wait_for_pace(SMS, self._text_interval)
        self.outbox.tried(item.id)
        return self._texts.send(item.recipient_id, body)
