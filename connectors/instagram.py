"""The Instagram channel: Meta's webhooks in, Graph API messages out, nothing lost between.

Configured in credentials.yml under `connectors.instagram.InstagramInput`:
    verify_token: "${INSTAGRAM_VERIFY_TOKEN}"
    app_secret: "${INSTAGRAM_APP_SECRET}"
    access_token: "${INSTAGRAM_ACCESS_TOKEN}"
and by the settings (INSTAGRAM_GRAPH_URL, INBOX_LEASE_SECONDS, …; see README).

The constructor only stores that configuration. Everything else starts with the server
(Sanic's `before_server_start`) and stops with it. A POST is checked (size, signature,
shape), its messages are committed to the durable inbox, and only then does Meta get its
200; the inbox worker runs the turns and the replies go out through the durable outbox
(docs/delivery.md). On SIGTERM the server answers 503 to new deliveries, finishes the
turns it has begun within SHUTDOWN_GRACE_SECONDS and leaves the rest to the next start.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic.audit import hash_id
from clinic.db import create_database_engine
from clinic.delivery import Inbox, InboxFull, InboxItem, NewMessage, Outbox
from clinic.handoffs import Decision, HandoffDesk, StaffNotice
from clinic.redaction import REDACTOR
from clinic.settings import Settings, load_settings
from clinic.templates import templates_for
from connectors.graph_api import (
    GraphApiClient,
    Sent,
    custom_body,
    describe,
    passing_control,
    text_bodies,
)
from connectors.heap import freeze_startup_objects
from connectors.log_levels import follow_rasa_log_level
from connectors.outbox import ReplySender
from connectors.webhook import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
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

_VARIABLE = re.compile(r"\$\{(\w+)\}")
# A turn that fails this often (never a crash: an exception each time) is given up.
MAX_TURN_ATTEMPTS = 5
POLL_SECONDS = 1.0
SWITCH_INTERVAL_SECONDS = 0.0005

# (sender id, mid) -> None if the conversation does not hold that message yet, else the
# bot's answers to it there (as Rasa hands them to an output channel).
AnswersIfHandled = Callable[[str, str], Awaitable[list[dict[str, Any]] | None]]


class InstagramOutput(OutputChannel):
    """The replies of one turn: each committed to the outbox, numbered after the message it
    answers, then sent; buttons become quick replies. Rasa waits for each reply's first try
    (commit and send): run beside its next steps, they waited behind it for the interpreter.
    A reply that could not be stored fails the turn, which is run again. A text sent with
    `thread_control="pass"` (the hand-off) also passes the conversation to `handoff_target`."""

    def __init__(self, sender: ReplySender, inbox_mid: str, handoff_target: str):
        self._sender = sender
        self._inbox_mid = inbox_mid
        self._handoff_target = handoff_target
        self._seq = 0

    @classmethod
    def name(cls) -> str:
        return "instagram"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        bodies = text_bodies(recipient_id, text)
        for body in bodies[:-1]:
            await self._reply(recipient_id, body["message"])
        last = bodies[-1]["message"]
        if kwargs.get("thread_control") == "pass":
            last = passing_control(last, self._handoff_target)
        await self._reply(recipient_id, last)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        options = [(str(b.get("title", "")), str(b.get("payload", ""))) for b in buttons]
        for body in text_bodies(recipient_id, text, options):
            await self._reply(recipient_id, body["message"])

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        attachment = {"type": "image", "payload": {"url": image}}
        await self._reply(recipient_id, {"attachment": attachment})

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self._reply(recipient_id, custom_body(recipient_id, json_message)["message"])

    async def _reply(self, recipient_id: str, message: dict[str, Any]) -> None:
        seq, self._seq = self._seq, self._seq + 1
        await asyncio.wrap_future(self._sender.add(recipient_id, self._inbox_mid, seq, message))


class InstagramInput(InputChannel):
    """`GET` and `POST /webhooks/instagram/webhook`."""

    @classmethod
    def name(cls) -> str:
        return "instagram"

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> InstagramInput:
        credentials = credentials or {}
        values = {
            key: _expand(str(credentials.get(key) or f"${{INSTAGRAM_{key.upper()}}}"))
            for key in ("verify_token", "app_secret", "access_token")
        }
        follow_rasa_log_level()
        return cls(**values, settings=load_settings())

    def __init__(self, verify_token: str, app_secret: str, access_token: str, settings: Settings):
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.access_token = access_token
        self.settings = settings
        self._id_hash_key = settings.id_hash_key
        self._attachment_reply = templates_for(settings).render("attachment_only")
        self._draining = False
        # Started by `start`, when the server starts.
        self.graph: GraphApiClient | None = None
        self.inbox: Inbox | None = None
        self.outbox: Outbox | None = None
        self.sender: ReplySender | None = None
        self.worker: InboxWorker | None = None
        self.handoffs: HandoffDesk | None = None
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None
        self._answers_if_handled: AnswersIfHandled | None = None

    def start(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        answers_if_handled: AnswersIfHandled | None = None,
    ) -> None:
        """Opens the channel and starts taking messages from the inbox."""
        self.open(on_new_message, answers_if_handled)
        self.worker.start()

    def open(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        answers_if_handled: AnswersIfHandled | None = None,
    ) -> None:
        """Builds the Graph client, the inbox and outbox, and the (idle) worker."""
        settings = self.settings
        # The dialogue worker's thread keeps the GIL busy with the model; with Python's
        # default 5 ms turns, every step of a webhook's commit would wait that long.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        self._on_new_message = on_new_message
        self._answers_if_handled = answers_if_handled
        engine = create_database_engine(settings.database_url)
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
        self._recover()

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

    async def drain(self) -> None:
        """SIGTERM: new deliveries get 503, turns in progress finish (or go back)."""
        self._draining = True
        if self.worker is None:
            return
        grace = self.settings.shutdown_grace_seconds
        unfinished = await self.worker.drain(grace)
        await asyncio.to_thread(self.sender.close, 2.0)
        logger.info("instagram channel drained; %d turns left to the next start", unfinished)

    def stop(self) -> None:
        """Stops the worker and releases the Graph client's threads and connections."""
        if self.worker is not None:
            self.worker.stop()
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

    def get_output_channel(self) -> OutputChannel:
        return self._output(f"out-{time.time_ns()}")

    def _output(self, inbox_mid: str) -> InstagramOutput:
        return InstagramOutput(self.sender, inbox_mid, self.settings.handoff_target_app_id)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("instagram_webhook", __name__)

        @webhook.listener("before_server_start")
        async def open_channel(app: Any, _loop: Any) -> None:
            # Sanic would buffer up to 100 MB before the channel could refuse a body.
            app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
            self.open(on_new_message, _tracker_lookup(app))

        @webhook.listener("after_server_start")
        async def start_worker(_app: Any, _loop: Any) -> None:
            freeze_startup_objects()
            self.worker.start()  # Rasa's agent is loaded by now

        @webhook.listener("before_server_stop")
        async def drain(_app: Any, _loop: Any) -> None:
            await self.drain()

        @webhook.listener("after_server_stop")
        async def stop(_app: Any, _loop: Any) -> None:
            self.stop()

        @webhook.get("/")
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.get("/webhook")
        async def verify(request: Request) -> HTTPResponse:
            return self.verify(request.args)

        @webhook.post("/webhook")
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request.body, request.headers.get(SIGNATURE_HEADER))

        return webhook

    def verify(self, args: Mapping[str, Any]) -> HTTPResponse:
        """Meta's subscription handshake: echo the challenge for our verify token only."""
        mode, token = _first(args, "hub.mode"), _first(args, "hub.verify_token")
        if mode == "subscribe" and token and _same(token, self.verify_token):
            logger.info("instagram webhook verified")
            return response.text(_first(args, "hub.challenge") or "")
        logger.warning("instagram webhook verification refused")
        return response.text("forbidden", status=403)

    async def receive(self, body: bytes, signature_header: str | None) -> HTTPResponse:
        """Every outcome is logged with ids and reasons only: rejected, ignored, duplicate,
        accepted. 200 only once the messages are committed."""
        if self._draining:
            return response.text("shutting down, try again", status=503)
        if len(body) > MAX_BODY_BYTES:
            logger.warning("instagram delivery rejected: too large (%d bytes)", len(body))
            return response.text("payload too large", status=413)
        if not signature_is_valid(body, signature_header, self.app_secret):
            logger.warning("instagram delivery rejected: bad or missing signature")
            return response.text("forbidden", status=403)
        try:
            items = parse_delivery(body, self.settings.instagram_app_id)
        except BadDelivery as error:
            logger.warning("instagram delivery rejected: %s", error)
            return response.text("bad request", status=400)
        for item in items:
            if isinstance(item, Ignored):
                logger.info("instagram item ignored: %s", item.reason)
        try:
            incoming = await self._after_staff(items)
        except Exception as error:  # noqa: BLE001 - Meta retries the whole delivery
            logger.error(
                "instagram delivery deferred: hand-offs unavailable (%s)", type(error).__name__
            )
            return response.text("unavailable, try again", status=503)
        messages = [NewMessage(i.mid, i.sender_id, i.timestamp, i.kind, i.text) for i in incoming]
        try:
            accepted = await asyncio.to_thread(self.inbox.accept, messages, self.worker.free())
        except InboxFull:
            logger.warning("instagram delivery deferred: inbox full")
            return response.text("busy, try again", status=503)
        except Exception as error:  # noqa: BLE001 - the inbox can't be reached: Meta retries
            logger.error(
                "instagram delivery deferred: inbox unavailable (%s)", type(error).__name__
            )
            return response.text("unavailable, try again", status=503)
        for message in messages:
            outcome = "accepted" if message.mid in accepted.new else "duplicate"
            logger.info("instagram item %s sender=%s", outcome, self._ref(message.sender_id))
        if accepted.claimed:
            self.worker.run(accepted.claimed)
        if len(accepted.new) > len(accepted.claimed):
            self.worker.wake()
        return response.text("EVENT_RECEIVED")

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
        output = self._output(item.mid)
        try:
            answers = await self._answers_if_handled_before(item)
            if answers is not None:
                # A claim after a crash: the conversation holds this message already. Its
                # answers are stored again (only those that are missing are kept).
                logger.info("instagram item already in the conversation sender=%s", ref)
                for answer in answers:
                    await output.send_response(item.sender_id, dict(answer))
            else:
                decision = Decision.ANSWER
                if item.handoff_open is not False:
                    decision = await asyncio.to_thread(self.handoffs.decide, item.sender_id)
                if decision is Decision.STAY_SILENT:
                    logger.info("instagram item left to staff sender=%s", ref)
                else:
                    if decision is Decision.TAKE_BACK_AND_ANSWER:
                        await asyncio.to_thread(self._take_back, item.sender_id)
                    await self._answer(item, output)
            more = await asyncio.to_thread(self.inbox.finish, item)
            logger.info("instagram item processed kind=%s sender=%s", item.kind, ref)
            return more
        except Exception as error:  # noqa: BLE001 - the class only: it may quote the patient
            return await self._turn_failed(item, error)

    async def _answer(self, item: InboxItem, output: InstagramOutput) -> None:
        if item.kind == "attachment":
            await output.send_text_message(item.sender_id, self._attachment_reply)
            return
        REDACTOR.register(item.sender_id, item.text)  # never in a log line
        if self.settings.typing_indicator:
            self.sender.typing(item.sender_id)
        message = UserMessage(
            text=item.text,
            output_channel=output,
            sender_id=item.sender_id,
            input_channel=self.name(),
            message_id=item.mid,
        )
        await self._on_new_message(message)

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

    async def _answers_if_handled_before(self, item: InboxItem) -> list[dict] | None:
        if item.attempts <= 1 or self._answers_if_handled is None:
            return None  # a first claim: no turn can have run
        return await self._answers_if_handled(item.sender_id, item.mid)

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


def _tracker_lookup(app: Any) -> AnswersIfHandled:
    """Looks message `mid` up in Rasa's tracker store; the bot's answers that follow it."""

    async def answers_if_handled(sender_id: str, mid: str) -> list[dict[str, Any]] | None:
        tracker = await app.ctx.agent.tracker_store.retrieve(sender_id)
        return None if tracker is None else answers_to(list(tracker.events), mid)

    return answers_if_handled


def answers_to(events: list[Any], mid: str) -> list[dict[str, Any]] | None:
    """The bot's messages after the user message `mid` and before the next user message;
    None when the events don't hold that message."""
    answers = None
    for event in events:
        if isinstance(event, UserUttered):
            if answers is not None:
                break
            if event.message_id == mid:
                answers = []
        elif isinstance(event, BotUttered) and answers is not None:
            answers.append(event.message())
    return answers


def _expand(value: str) -> str:
    """`${NAME}` from the environment; a clear error when it is not set."""

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if not os.environ.get(name):
            raise ValueError(f"the Instagram channel needs the environment variable {name}")
        return os.environ[name]

    return _VARIABLE.sub(lookup, value)


def _first(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
