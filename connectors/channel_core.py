"""The Instagram channel's delivery side: Meta's webhooks into the durable inbox, claimed
turns out to the dialogue, replies through the durable outbox (docs/delivery.md). All of it
on the rasa server's event loop; the blocking database and Graph calls in one executor.

The dialogue is two callbacks: `converse(item, output)` runs a message through Rasa, which
writes its replies to `output`; `replay(item, output)` writes the answers the conversation
already holds for it (a claim after a crash) and says whether it held the message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from clinic.audit import hash_id
from clinic.db import create_database_engine
from clinic.delivery import Inbox, InboxFull, InboxItem, NewMessage, Outbox
from clinic.handoffs import Decision, HandoffDesk, StaffNotice
from clinic.live_config import LiveConfig
from clinic.outbox import Reply
from clinic.settings import Settings
from connectors import webhook
from connectors.graph_api import GraphApiClient
from connectors.graph_outcomes import Sent, describe
from connectors.outbox import OutboxSender
from connectors.replies import InstagramOutput
from connectors.sms_client import TwilioTexts
from connectors.webhook import ControlReturned, Incoming, Item, StaffWrote
from connectors.worker import InboxWorker

logger = logging.getLogger(__name__)

# A turn that fails this often (never a crash: an exception each time) is given up.
MAX_TURN_ATTEMPTS = 5
POLL_SECONDS = 1.0

Converse = Callable[[InboxItem, InstagramOutput], Awaitable[None]]
Replay = Callable[[InboxItem, InstagramOutput], Awaitable[bool]]
# What a delivery gets: HTTP status and text.
Answer = tuple[int, str]
SHUTTING_DOWN: Answer = (503, "shutting down, try again")
UNAVAILABLE: Answer = (503, "unavailable, try again")


class InstagramChannel:
    """Takes Meta's deliveries (`take_delivery`) and runs their turns (`start_turns`)."""

    def __init__(self, verify_token: str, app_secret: str, access_token: str, settings: Settings):
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.access_token = access_token
        self.settings = settings
        self._id_hash_key = settings.id_hash_key
        self._texts: LiveConfig | None = None  # the clinic's wording, built by `open`
        self._draining = False
        self._jobs: list[asyncio.Task] = []
        self.worker: InboxWorker | None = None  # the rest too, by `open`

    async def open(self, converse: Converse, replay: Replay) -> None:
        """Builds the Graph client, the inbox and outbox, and the (idle) worker; frees what
        this server held when it last stopped (before any delivery is taken)."""
        settings = self.settings
        self._converse, self._replay = converse, replay
        # The blocking calls (intake, turns, the poller's sends), each thread with a database
        # connection kept open: opening one per call cost more than the calls.
        threads = 3 * settings.max_concurrency
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="instagram-io")
        engine = create_database_engine(settings.database_url, pool_size=threads, max_overflow=0)
        self._texts = LiveConfig(engine, settings)
        lease = timedelta(seconds=settings.lease_seconds)
        key = settings.id_hash_key
        self.inbox = Inbox(
            engine, settings.replica_id, lease, key, max_pending=settings.max_pending
        )
        self.outbox = Outbox(engine, settings.replica_id, lease, key)
        self.handoffs = HandoffDesk(engine, settings)
        self.graph = GraphApiClient(
            self.access_token, base_url=settings.graph_url, max_connections=threads
        )
        budget = timedelta(seconds=settings.outbox_retry_seconds)
        texts = TwilioTexts(settings) if settings.sms_configured else None
        self.sender = OutboxSender(
            self.outbox, self.graph, budget, key, None, texts, settings.twilio_rate
        )
        self._typing: set[asyncio.Future] = set()
        claim = lambda limit: self._io(self.inbox.claim, limit)  # noqa: E731
        self.worker = InboxWorker(self._take_turn, claim, settings.max_concurrency, POLL_SECONDS)
        try:
            freed = await self._io(self.inbox.recover), await self._io(self.outbox.recover)
        except Exception as error:  # noqa: BLE001 - the leases run out by themselves
            logger.warning("recovery failed: %s", type(error).__name__)
            return
        if any(freed):
            logger.info("taken back from this server's last run: %d messages, %d replies", *freed)

    def start_turns(self) -> None:
        """Starts the turns (once the dialogue can answer them) and the outbox's poller."""
        self.worker.start()
        self._jobs = [asyncio.create_task(job()) for job in (self._poll_outbox, self._renew)]

    async def _io(self, call: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def _poll_outbox(self) -> None:
        """Sends what waits for no one here: due retries, reminders, a dead server's."""
        while True:
            try:
                items = await self._io(self.sender.claim_due)
                await asyncio.gather(*(self._io(self.sender.send, [item]) for item in items))
            except Exception as error:  # noqa: BLE001 - the poller outlives any fault
                logger.warning("outbox poll failed: %s", type(error).__name__)
            await asyncio.sleep(POLL_SECONDS)

    async def _renew(self) -> None:
        """Keeps the leases of the turns running and of the messages being sent."""
        while True:
            await asyncio.sleep(self.inbox.lease.total_seconds() / 3)
            for queue, ids in ((self.inbox, self.worker.running), (self.outbox, self.sender.held)):
                try:
                    await self._io(queue.renew, list(ids))
                except Exception as error:  # noqa: BLE001 - retried at the next beat
                    logger.warning("lease renewal failed: %s", type(error).__name__)

    async def drain(self) -> int:
        """SIGTERM: new deliveries get 503, turns in progress finish within
        SHUTDOWN_GRACE_SECONDS or go back to the inbox; how many went back."""
        self._draining = True
        if self.worker is None:
            return 0
        unfinished = await self.worker.drain(self.settings.shutdown_grace_seconds)
        if unfinished:
            await self._io(self.inbox.release, unfinished)
        await self._io(self._stop_sending, 2.0)
        logger.info("instagram channel drained; %d turns left to the next start", len(unfinished))
        return len(unfinished)

    async def stop(self) -> None:
        """Cancels what still runs (its leases run out); releases threads and connections."""
        if self.worker is None:
            return
        self._draining = True
        self.worker.stop()
        for job in self._jobs:
            job.cancel()
        await self._io(self._stop_sending, 0.0)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.graph.close()

    async def take_delivery(self, body: bytes, signature_header: str | None) -> Answer:
        """Every outcome is logged with ids and reasons only: rejected, ignored, duplicate,
        accepted. 200 only once the messages are committed."""
        if self._draining:
            return SHUTTING_DOWN
        if len(body) > webhook.MAX_BODY_BYTES:
            logger.warning("instagram delivery rejected: too large (%d bytes)", len(body))
            return 413, "payload too large"
        if not webhook.signature_is_valid(body, signature_header, self.app_secret):
            logger.warning("instagram delivery rejected: bad or missing signature")
            return 403, "forbidden"
        try:
            settings = self.settings
            items = webhook.parse_delivery(
                body, settings.instagram_app_id, settings.instagram_account_id
            )
        except webhook.BadDelivery as error:
            logger.warning("instagram delivery rejected: %s", error)
            return 400, "bad request"
        for item in items:
            if isinstance(item, webhook.Ignored):
                logger.info("instagram item ignored: %s", item.reason)
        try:
            incoming = await self._after_staff(items)
            messages = [
                NewMessage(i.mid, i.sender_id, i.timestamp, i.kind, i.text) for i in incoming
            ]
            # Those the worker has room for are claimed in the same transaction: no claim.
            accepted = await self._io(self.inbox.accept, messages, self.worker.free())
        except InboxFull:
            logger.warning("instagram delivery deferred: inbox full")
            return 503, "busy, try again"
        except Exception as error:  # noqa: BLE001 - the database can't be reached: Meta retries
            logger.error("instagram delivery deferred: %s", type(error).__name__)
            return UNAVAILABLE
        self.worker.run(accepted.claimed)
        if len(accepted.new) > len(accepted.claimed):
            self.worker.wake()
        for message in messages:
            outcome = "accepted" if message.mid in accepted.new else "duplicate"
            logger.info("instagram item %s sender=%s", outcome, self._ref(message.sender_id))
        return 200, "EVENT_RECEIVED"

    async def _after_staff(self, items: list[Item]) -> list[Incoming]:
        """Records staff writing and control coming back (committed before the 200); the
        messages that are the bot's to store: not those on the standby channel (the app
        holding the conversation answers them), unless the hand-off there ran out."""
        notices = [_notice(i) for i in items if isinstance(i, (StaffWrote, ControlReturned))]
        if notices:
            for notice in await self._io(self.handoffs.record, notices):
                what = "control returned" if notice.returned else "staff wrote"
                logger.info("instagram %s sender=%s", what, self._ref(notice.instagram_id))
        incoming = [i for i in items if isinstance(i, Incoming)]
        on_standby = {i.sender_id for i in incoming if i.standby}
        if not on_standby:
            return incoming
        ran_out = await self._io(self.handoffs.ran_out, on_standby)
        for sender_id in on_standby - ran_out:
            logger.info("instagram item left to staff (standby) sender=%s", self._ref(sender_id))
        return [i for i in incoming if not i.standby or i.sender_id in ran_out]

    async def _take_turn(self, item: InboxItem) -> bool:
        """One message through the dialogue; its replies and the message's end committed
        together, then sent (docs/delivery.md). True when the patient's next message waits."""
        ref = self._ref(item.sender_id)
        output = InstagramOutput(item.mid, self.settings.handoff_target_app_id)
        try:
            # A turn that hangs (an action server that never answers) is cut short, then
            # tried again like any failed turn: it would hold the patient's messages.
            deadline = self.settings.turn_deadline_seconds
            await asyncio.wait_for(self._through_dialogue(item, output, ref), deadline)
            return await self._io(self._end_turn, item, output.take(), ref)
        except Exception as error:  # noqa: BLE001 - the class only: it may quote the patient
            return await self._turn_failed(item, error)

    def _end_turn(self, item: InboxItem, replies: list[Reply], ref: str) -> bool:
        """Stores the replies with the message's end (one commit), then sends them; True when
        the patient's next message waits. Blocking."""
        stored = self.outbox.store(replies, item)
        logger.info("instagram item processed kind=%s sender=%s", item.kind, ref)
        self.sender.send(stored.leased)
        return stored.next_message_waits

    def _stop_sending(self, grace_seconds: float) -> None:
        """Sends in flight may finish within `grace_seconds`; what is still held then goes
        back to the outbox. Blocking."""
        self.sender.stopping = True
        deadline = time.monotonic() + grace_seconds
        while self.sender.held and time.monotonic() < deadline:
            time.sleep(0.02)
        self.outbox.release(list(self.sender.held))

    async def _through_dialogue(self, item: InboxItem, output: InstagramOutput, ref: str) -> None:
        if item.attempts > 1 and await self._replay(item, output):
            # A claim after a crash: the conversation holds this message already. Its
            # answers are stored again (only those that were missing are kept).
            logger.info("instagram item already in the conversation sender=%s", ref)
            return
        decision = Decision.ANSWER
        if item.handoff_open is not False:
            decision = await self._io(self.handoffs.decide, item.sender_id)
        if decision is Decision.STAY_SILENT:
            logger.info("instagram item left to staff sender=%s", ref)
            return
        if decision is Decision.TAKE_BACK_AND_ANSWER:
            # The hand-off ran out. One try; if Graph refuses, the replies still go.
            outcome = await self._io(self.graph.take_control, item.sender_id)
            result = "ok" if isinstance(outcome, Sent) else describe(outcome)
            logger.info("instagram conversation taken back: %s sender=%s", result, ref)
        if item.kind == "attachment":
            texts = (await self._io(self._texts.current)).templates
            await output.send_text_message(item.sender_id, texts.render("attachment_only"))
            return
        if self.settings.typing_indicator:  # never waited for
            typing = asyncio.ensure_future(self._io(self.sender.typing, item.sender_id))
            self._typing.add(typing)
            typing.add_done_callback(self._typing.discard)
        await self._converse(item, output)

    async def _turn_failed(self, item: InboxItem, error: Exception) -> bool:
        """Tried again later, or given up; True when the patient's next message waits."""
        ref = self._ref(item.sender_id)
        if item.attempts >= MAX_TURN_ATTEMPTS:
            logger.error("instagram item given up: %s sender=%s", type(error).__name__, ref)
            return await self._io(self.inbox.give_up, item)
        delay = timedelta(seconds=2**item.attempts)
        logger.warning("instagram turn failed: %s sender=%s, retried", type(error).__name__, ref)
        await self._io(self.inbox.release, [item.id], self.inbox.clock() + delay)
        return False

    def _ref(self, sender_id: str) -> str:
        return hash_id(sender_id, self._id_hash_key)


def _notice(item: StaffWrote | ControlReturned) -> StaffNotice:
    at = datetime.fromtimestamp(item.timestamp / 1000, timezone.utc) if item.timestamp else None
    if isinstance(item, ControlReturned):
        return StaffNotice(item.patient_id, at, returned=True)
    return StaffNotice(item.patient_id, at, mid=item.mid)
