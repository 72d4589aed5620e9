"""The Instagram channel's delivery side, without Rasa: Meta's webhooks into the durable
inbox, claimed turns out to the dialogue, replies through the durable outbox.

It runs in the rasa server's process (`INSTAGRAM_DELIVERY_PROCESS=0`, and in the channel's
unit tests) or in a delivery process beside it (`connectors/delivery_process.py`), where its
database and Graph work does not share the dialogue's interpreter. Either way the dialogue
is two callbacks: `converse(item)` runs a message through Rasa, `replay(item)` stores again
the answers the conversation already holds for it (a claim after a crash) and says whether
it held the message. See docs/delivery.md.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from clinic.audit import hash_id
from clinic.db import create_database_engine
from clinic.delivery import Accepted, Inbox, InboxFull, InboxItem, NewMessage, Outbox
from clinic.handoffs import Decision, HandoffDesk, StaffNotice
from clinic.live_config import LiveConfig
from clinic.settings import Settings
from connectors.graph_api import GraphApiClient, Sent, describe
from connectors.group_commit import GroupCommit
from connectors.outbox import ReplySender
from connectors.replies import ReplyWriter
from connectors.webhook import (
    MAX_BODY_BYTES,
    BadDelivery,
    ControlReturned,
    Ignored,
    Incoming,
    Item,
    StaffWrote,
    parse_delivery,
    signature_is_valid,
)
from connectors.worker import InboxWorker

logger = logging.getLogger(__name__)

# A turn that fails this often (never a crash: an exception each time) is given up.
MAX_TURN_ATTEMPTS = 5
POLL_SECONDS = 1.0
SWITCH_INTERVAL_SECONDS = 0.0005

Converse = Callable[[InboxItem], Awaitable[None]]
Replay = Callable[[InboxItem], Awaitable[bool]]
# What a delivery gets: HTTP status and text.
Answer = tuple[int, str]
SHUTTING_DOWN: Answer = (503, "shutting down, try again")
UNAVAILABLE: Answer = (503, "unavailable, try again")


async def never_handled(_item: InboxItem) -> bool:
    return False


class InstagramChannel:
    """Takes Meta's deliveries (`take_delivery`) and runs their turns (`start`)."""

    def __init__(self, verify_token: str, app_secret: str, access_token: str, settings: Settings):
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.access_token = access_token
        self.settings = settings
        self._id_hash_key = settings.id_hash_key
        self._texts: LiveConfig | None = None  # the clinic's wording, built by `open`
        self._draining = False
        # Built by `open`, when the server starts.
        self.graph: GraphApiClient | None = None
        self.inbox: Inbox | None = None
        self.outbox: Outbox | None = None
        self.sender: ReplySender | None = None
        self.worker: InboxWorker | None = None
        self.handoffs: HandoffDesk | None = None
        self._grouped: GroupCommit[NewMessage, Accepted] | None = None
        self._converse: Converse | None = None
        self._replay: Replay = never_handled

    def open(self, converse: Converse, replay: Replay = never_handled) -> None:
        """Builds the Graph client, the inbox and outbox, and the (idle) worker."""
        settings = self.settings
        # The dialogue keeps the GIL busy with the model; with Python's default 5 ms turns,
        # every step of a webhook's commit would wait that long.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        self._converse = converse
        self._replay = replay
        engine = create_database_engine(settings.database_url)
        self._texts = LiveConfig(engine, settings)
        lease = timedelta(seconds=settings.lease_seconds)
        key = settings.id_hash_key
        self.inbox = Inbox(
            engine, settings.replica_id, lease, key, max_pending=settings.max_pending
        )
        self.handoffs = HandoffDesk(engine, settings)
        self.outbox = Outbox(engine, settings.replica_id, lease, key)
        self.graph = GraphApiClient(
            self.access_token, id_hash_key=settings.id_hash_key, base_url=settings.graph_url
        )
        self.sender = ReplySender(
            self.outbox,
            self.graph,
            timedelta(seconds=settings.outbox_retry_seconds),
            settings.id_hash_key,
        )
        self.worker = InboxWorker(
            self.inbox,
            self._take_turn,
            settings.max_concurrency,
            POLL_SECONDS,
            background=[self._poll_outbox],
        )
        # Deliveries that arrive while a commit runs go together into the next one.
        self._grouped = GroupCommit(self._store)
        self._recover()

    def start_turns(self) -> None:
        """Starts taking messages from the inbox (once the dialogue can answer them)."""
        self.worker.start()

    def _recover(self) -> None:
        """What this server held when it last stopped is free again at once (before any
        delivery is taken, so nothing claimed from now on is freed by mistake)."""
        try:
            freed = self.inbox.recover(), self.outbox.recover()
        except Exception as error:  # noqa: BLE001 - the leases run out by themselves
            logger.warning("inbox recovery failed: %s", type(error).__name__)
            return
        if any(freed):
            logger.info("taken back from this server's last run: %d messages, %d replies", *freed)

    async def _poll_outbox(self) -> None:
        """Sends the replies that wait for no one here: due retries, a dead server's."""
        while True:
            try:
                await asyncio.to_thread(self.sender.poll)
            except Exception as error:  # noqa: BLE001 - the poller outlives any fault
                logger.warning("outbox poll failed: %s", type(error).__name__)
            await asyncio.sleep(POLL_SECONDS)

    async def drain(self) -> int:
        """SIGTERM: new deliveries get 503, turns in progress finish (or go back); how many
        were left to the next start."""
        self._draining = True
        if self.worker is None:
            return 0
        grace = self.settings.shutdown_grace_seconds
        unfinished = await self.worker.drain(grace)
        await asyncio.to_thread(self.sender.close, 2.0)
        logger.info("instagram channel drained; %d turns left to the next start", unfinished)
        return unfinished

    def stop(self) -> None:
        """Stops the worker and releases the Graph client's threads and connections."""
        if self.worker is not None:
            self.worker.stop()
        if self._grouped is not None:
            self._grouped.close()
        if self.sender is not None:
            self.sender.close(timeout=0)
        if self.graph is not None:
            self.graph.close()

    def wait_idle(self, timeout: float) -> bool:
        """True once every accepted message is handled and every reply sent (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            quiet = not self.worker.busy() and self.sender.is_idle()
            if quiet and self.inbox.pending() == 0 and self.outbox.pending() == 0:
                return True
            time.sleep(0.02)
        return False

    async def send_reply(self, recipient_id: str, inbox_mid: str, seq: int, message: dict) -> None:
        """Stores one reply and waits for its first try (see `ReplySender.add`)."""
        await asyncio.wrap_future(self.sender.add(recipient_id, inbox_mid, seq, message))

    def replies(self, inbox_mid: str) -> ReplyWriter:
        return ReplyWriter(self.send_reply, inbox_mid, self.settings.handoff_target_app_id)

    async def take_delivery(self, body: bytes, signature_header: str | None) -> Answer:
        """Every outcome is logged with ids and reasons only: rejected, ignored, duplicate,
        accepted. 200 only once the messages are committed."""
        if self._draining:
            return SHUTTING_DOWN
        if len(body) > MAX_BODY_BYTES:
            logger.warning("instagram delivery rejected: too large (%d bytes)", len(body))
            return 413, "payload too large"
        if not signature_is_valid(body, signature_header, self.app_secret):
            logger.warning("instagram delivery rejected: bad or missing signature")
            return 403, "forbidden"
        try:
            items = parse_delivery(body, self.settings.instagram_app_id)
        except BadDelivery as error:
            logger.warning("instagram delivery rejected: %s", error)
            return 400, "bad request"
        for item in items:
            if isinstance(item, Ignored):
                logger.info("instagram item ignored: %s", item.reason)
        try:
            incoming = await self._after_staff(items)
        except Exception as error:  # noqa: BLE001 - Meta retries the whole delivery
            logger.error(
                "instagram delivery deferred: hand-offs unavailable (%s)", type(error).__name__
            )
            return UNAVAILABLE
        messages = [NewMessage(i.mid, i.sender_id, i.timestamp, i.kind, i.text) for i in incoming]
        try:
            accepted = await self._grouped.submit(messages)
        except InboxFull:
            logger.warning("instagram delivery deferred: inbox full")
            return 503, "busy, try again"
        except Exception as error:  # noqa: BLE001 - the inbox can't be reached: Meta retries
            logger.error(
                "instagram delivery deferred: inbox unavailable (%s)", type(error).__name__
            )
            return UNAVAILABLE
        for message in messages:
            outcome = "accepted" if message.mid in accepted.new else "duplicate"
            logger.info("instagram item %s sender=%s", outcome, self._ref(message.sender_id))
        return 200, "EVENT_RECEIVED"

    def _store(self, messages: list[NewMessage]) -> Accepted:
        """Stores the messages (of every delivery of a group commit) and starts their turns:
        those claimed at once, and a claim for the rest."""
        accepted = self.inbox.accept(messages, self.worker.free())
        if accepted.claimed:
            self.worker.run(accepted.claimed)
        if len(accepted.new) > len(accepted.claimed):
            self.worker.wake()
        return accepted

    async def _after_staff(self, items: list[Item]) -> list[Incoming]:
        """Records staff writing and control coming back (committed before the 200); the
        patients' messages that are the bot's to store. Messages on the standby channel
        belong to the app holding the conversation (staff, in the Instagram inbox), unless
        the hand-off that sent the patient there has run out: those are stored like any
        other, and their turn takes the conversation back first."""
        notices = [_notice(i) for i in items if isinstance(i, (StaffWrote, ControlReturned))]
        if notices:
            for notice in await asyncio.to_thread(self.handoffs.record, notices):
                what = "control returned" if notice.returned else "staff wrote"
                logger.info("instagram %s sender=%s", what, self._ref(notice.instagram_id))
        incoming = [i for i in items if isinstance(i, Incoming)]
        on_standby = {i.sender_id for i in incoming if i.standby}
        if not on_standby:
            return incoming
        ran_out = await asyncio.to_thread(self.handoffs.ran_out, on_standby)
        for sender_id in on_standby - ran_out:
            logger.info("instagram item left to staff (standby) sender=%s", self._ref(sender_id))
        return [i for i in incoming if not i.standby or i.sender_id in ran_out]

    async def _take_turn(self, item: InboxItem) -> bool:
        """One message through the dialogue (on the worker's loop); see docs/delivery.md.
        True when the patient's next message waits."""
        ref = self._ref(item.sender_id)
        try:
            # A turn that hangs (an action server that never answers, say) would hold the
            # patient's messages: its lease is renewed while it runs. Cut short, it is tried
            # again like any failed turn.
            deadline = self.settings.turn_deadline_seconds
            await asyncio.wait_for(self._through_dialogue(item, ref), deadline)
            more = await asyncio.to_thread(self.inbox.finish, item)
            logger.info("instagram item processed kind=%s sender=%s", item.kind, ref)
            return more
        except Exception as error:  # noqa: BLE001 - the class only: it may quote the patient
            return await self._turn_failed(item, error)

    async def _through_dialogue(self, item: InboxItem, ref: str) -> None:
        if item.attempts > 1 and await self._replay(item):
            # A claim after a crash: the conversation holds this message already. Its
            # answers were stored again (only those that were missing are kept).
            logger.info("instagram item already in the conversation sender=%s", ref)
            return
        decision = Decision.ANSWER
        if item.handoff_open is not False:
            decision = await asyncio.to_thread(self.handoffs.decide, item.sender_id)
        if decision is Decision.STAY_SILENT:
            logger.info("instagram item left to staff sender=%s", ref)
            return
        if decision is Decision.TAKE_BACK_AND_ANSWER:
            await asyncio.to_thread(self._take_back, item.sender_id)
        await self._answer(item)

    async def _answer(self, item: InboxItem) -> None:
        if item.kind == "attachment":
            texts = (await asyncio.to_thread(self._texts.current)).templates
            text = texts.render("attachment_only")
            await self.replies(item.mid).text(item.sender_id, text)
            return
        if self.settings.typing_indicator:
            self.sender.typing(item.sender_id)
        await self._converse(item)

    async def _turn_failed(self, item: InboxItem, error: Exception) -> bool:
        """Tried again later, or given up; True when the patient's next message waits."""
        ref = self._ref(item.sender_id)
        if item.attempts >= MAX_TURN_ATTEMPTS:
            logger.error("instagram item given up: %s sender=%s", type(error).__name__, ref)
            return await asyncio.to_thread(self.inbox.give_up, item)
        delay = timedelta(seconds=2**item.attempts)
        logger.warning("instagram turn failed: %s sender=%s, retried", type(error).__name__, ref)
        await asyncio.to_thread(self.inbox.release, [item.id], self.inbox.clock() + delay)
        return False

    def _take_back(self, sender_id: str) -> None:
        """A hand-off ran out: the conversation comes back before the bot answers. One try;
        if Graph refuses, the replies still go (and are kept as failed if they are refused)."""
        outcome = self.graph.take_control(sender_id)
        result = (
            "taken back" if isinstance(outcome, Sent) else f"not taken back: {describe(outcome)}"
        )
        logger.info("instagram conversation %s sender=%s", result, self._ref(sender_id))

    def _ref(self, sender_id: str) -> str:
        return hash_id(sender_id, self._id_hash_key)


def _notice(item: StaffWrote | ControlReturned) -> StaffNotice:
    at = datetime.fromtimestamp(item.timestamp / 1000, timezone.utc) if item.timestamp else None
    if isinstance(item, ControlReturned):
        return StaffNotice(item.patient_id, at, returned=True)
    return StaffNotice(item.patient_id, at, mid=item.mid)
