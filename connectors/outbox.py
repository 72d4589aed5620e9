"""Replies on their way to Instagram: committed first, sent in order per patient, never lost.

Each reply is stored in the durable outbox (`clinic.delivery.Outbox`) before it is sent, and
marked sent once Graph accepts it. The work runs on a few sender threads; a patient's replies
always go to the same thread, so they are stored and sent in the order the bot wrote them.
The dialogue waits for each reply's first try: run beside Rasa's next steps, the reply's
commit and send waited for the interpreter behind them. A reply that has to wait (Graph
throttling or down) goes back to the outbox with the time of its next try, and the
patient's later replies wait behind it there; whichever server's poller runs then takes
them, in order. Past `OUTBOX_RETRY_SECONDS`, or when Graph refuses it for good, a reply is
kept as failed: `python -m clinic outbox --failed`.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clinic.audit import hash_id
from clinic.delivery import Outbox, OutboxItem
from connectors.graph_api import (
    GraphApiClient,
    PermanentSendError,
    Rejected,
    RetryPolicy,
    Sent,
    describe,
    permanent_error,
    request_body,
    sender_action_body,
)

logger = logging.getLogger(__name__)

# Backoff between tries of one reply: full jitter from 0.5 s up to 20 s (Retry-After wins).
RETRY_POLICY = RetryPolicy(base=0.5, cap=20.0, max_attempts=1_000_000)
POLL_LIMIT = 32
SENDER_THREADS = 4


@dataclass
class _Job:
    """A reply for a sender thread: to store and send, or (from the poller) only to send."""

    recipient_id: str
    body: dict[str, Any]  # the Graph `message`, or a sender action body
    reply_id: int | None = None  # set once stored
    inbox_mid: str = ""
    seq: int = 0
    attempts: int = 1
    created_at: datetime | None = None
    # Done once the first try is over (sent, refused, or due again later) or the reply waits
    # behind an earlier one; an error if the reply could not be stored.
    tried: Future = field(default_factory=Future)
    durable: bool = True


class ReplySender:
    """Stores and sends replies on `SENDER_THREADS` threads, one patient always on one."""

    def __init__(
        self,
        outbox: Outbox,
        graph: GraphApiClient,
        retry_budget: timedelta,
        id_hash_key: str,
        rng: random.Random | None = None,
    ):
        self._outbox = outbox
        self._graph = graph
        self._retry_budget = retry_budget
        self._id_hash_key = id_hash_key
        self._rng = rng or random.Random()
        self._queues = [queue.SimpleQueue() for _ in range(SENDER_THREADS)]
        self._busy = 0  # jobs queued or running
        self._busy_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(q,), name=f"reply-sender-{n}", daemon=True)
            for n, q in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def add(self, recipient_id: str, inbox_mid: str, seq: int, message: dict) -> Future:
        """Stores one reply (the `message` of a Graph body) and sends it when its turn comes;
        returns at once. The future is done once its first try is over, or it was stored
        before (by a turn run again after a crash), or it waits behind an earlier reply."""
        job = _Job(recipient_id, message, inbox_mid=inbox_mid, seq=seq)
        self._submit(job)
        return job.tried

    def typing(self, recipient_id: str) -> None:
        """The typing indicator: sent before the replies, never stored, never retried."""
        self._submit(
            _Job(recipient_id, sender_action_body(recipient_id, "typing_on"), durable=False)
        )

    def is_idle(self) -> bool:
        return self._busy == 0

    def poll(self) -> None:
        """Takes the replies that wait for no one here: due retries, a dead server's. None
        once stopping: a server on its way down would hold them until their leases ran out."""
        if self._stopping.is_set():
            return
        items = self._outbox.claim(POLL_LIMIT)
        if self._stopping.is_set():  # stopped meanwhile: given back at once
            self._outbox.release(item.id for item in items)
            return
        for item in items:
            self._submit(_stored_job(item))

    def close(self, timeout: float) -> None:
        """Stops: replies in flight may finish within `timeout`; the rest stay in the outbox
        (stored ones are given back at once)."""
        if self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stopping.set()
        for waiting in self._queues:
            waiting.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        left = []
        for waiting in self._queues:
            while not waiting.empty():
                job = waiting.get()
                if job is None:
                    continue
                if job.reply_id is not None:
                    left.append(job.reply_id)
                if not job.tried.done():  # nothing waits for it forever
                    job.tried.set_exception(RuntimeError("the reply sender stopped"))
        if left:
            self._outbox.release(left)

    def _submit(self, job: _Job) -> None:
        with self._busy_lock:
            self._busy += 1
        shard = zlib.crc32(job.recipient_id.encode()) % len(self._queues)
        self._queues[shard].put(job)

    def _run(self, jobs: queue.SimpleQueue) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                self._handle(job)
            except Exception as error:  # noqa: BLE001 - a fault costs a delay, never a reply
                logger.error("reply sender failed: %s", type(error).__name__)
                if job.durable and job.reply_id is None and not job.tried.done():
                    job.tried.set_exception(error)  # not stored: the turn is run again
            finally:
                if not job.tried.done():
                    job.tried.set_result(job.reply_id)
                with self._busy_lock:
                    self._busy -= 1

    def _handle(self, job: _Job) -> None:
        if not job.durable:  # a typing indicator: best effort
            self._graph.post_once(job.body)
            return
        if job.reply_id is None:
            job.reply_id = self._outbox.add(job.recipient_id, job.inbox_mid, job.seq, job.body)
            job.created_at = self._outbox.clock()
            if job.reply_id is None:
                return  # stored before, or waiting behind an earlier reply
        if self._send(job):
            # The patient's next reply, waiting in the outbox, follows at once.
            for item in self._outbox.claim(1, None, job.recipient_id):
                self._submit(_stored_job(item))

    def _send(self, job: _Job) -> bool:
        """One try; True once the reply is settled (sent or failed for good) and the
        patient's next reply may be waiting behind it."""
        outcome = self._graph.post_once(request_body(job.recipient_id, job.body))
        ref = hash_id(job.recipient_id, self._id_hash_key)
        if isinstance(outcome, Sent):
            return self._outbox.sent(job.reply_id, job.recipient_id, outcome.message_id)
        if (
            isinstance(outcome, Rejected)
            and "thread_control" in job.body
            and type(permanent_error(outcome)) is PermanentSendError  # not window, token…
        ):
            # Meta refuses thread control where Conversation Routing is not set up: the
            # hand-off message still goes, and staff answer from the inbox all the same.
            logger.warning(
                "thread control refused: %s reply=%s recipient=%s",
                describe(outcome),
                job.reply_id,
                ref,
            )
            job.body = job.body["message"]
            return self._send(job)
        if isinstance(outcome, Rejected):
            logger.warning(
                "reply failed: %s reply=%s recipient=%s", describe(outcome), job.reply_id, ref
            )
            self._outbox.failed(job.reply_id, describe(outcome))
            return True
        if self._outbox.clock() - job.created_at >= self._retry_budget:
            logger.error(
                "reply given up: %s reply=%s recipient=%s", describe(outcome), job.reply_id, ref
            )
            self._outbox.failed(job.reply_id, "gave up: " + describe(outcome))
            return True
        delay = RETRY_POLICY.delay(job.attempts, outcome.retry_after, self._rng)
        logger.warning(
            "reply delayed: %s reply=%s recipient=%s retry in %.1f s",
            describe(outcome), job.reply_id, ref, delay,
        )  # fmt: skip
        not_before = self._outbox.clock() + timedelta(seconds=delay)
        # Later replies to the patient find it pending in the outbox and wait behind it.
        self._outbox.retry_later(job.reply_id, not_before, describe(outcome))
        return False


def _stored_job(item: OutboxItem) -> _Job:
    job = _Job(item.recipient_id, item.body, item.id, attempts=item.attempts)
    job.created_at = item.created_at
    return job
