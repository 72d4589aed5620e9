"""The Instagram channel: Meta's webhooks in, Graph API messages out.

Configured in credentials.yml under `connectors.instagram.InstagramInput`:
    verify_token: "${INSTAGRAM_VERIFY_TOKEN}"
    app_secret: "${INSTAGRAM_APP_SECRET}"
    access_token: "${INSTAGRAM_ACCESS_TOKEN}"
and by the settings (INSTAGRAM_GRAPH_URL, INSTAGRAM_MAX_CONCURRENCY, DEDUPE_STORE_URL…).

The constructor only stores that configuration. The Graph client, the dialogue worker,
the outbox and the dedupe store start with the server (Sanic's `before_server_start`)
and stop with it. A POST is checked (size, signature, shape), answered 200 at once, and
its items are handed to the dialogue worker; the reply to Meta never waits for the model.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic.application import ClinicApp
from clinic.audit import hash_id
from clinic.settings import Settings, load_settings
from clinic.templates import load_templates
from connectors.dedupe import DedupeStore, dedupe_store
from connectors.dispatch import DialogueWorker
from connectors.graph_api import GraphApiClient, RetryPolicy
from connectors.outbox import Outbox, Reply
from connectors.webhook import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    BadDelivery,
    Ignored,
    Incoming,
    parse_delivery,
    signature_is_valid,
)

logger = logging.getLogger(__name__)

# Long enough to ride out a Graph API outage of a minute or two (full-jitter backoff).
SEND_RETRY_POLICY = RetryPolicy(base=0.5, cap=20.0, max_attempts=14)
_VARIABLE = re.compile(r"\$\{(\w+)\}")


class InstagramOutput(OutputChannel):
    """Rasa's replies, as Instagram messages; buttons become quick replies."""

    def __init__(self, outbox: Outbox):
        self._outbox = outbox

    @classmethod
    def name(cls) -> str:
        return "instagram"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        self._outbox.put(recipient_id, Reply(text=text))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        options = [(str(b.get("title", "")), str(b.get("payload", ""))) for b in buttons]
        self._outbox.put(recipient_id, Reply(text=text, quick_replies=options))

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        attachment = {"type": "image", "payload": {"url": image}}
        self._outbox.put(recipient_id, Reply(custom={"attachment": attachment}))

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        self._outbox.put(recipient_id, Reply(custom=json_message))


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
        return cls(**values, settings=load_settings())

    def __init__(self, verify_token: str, app_secret: str, access_token: str, settings: Settings):
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.access_token = access_token
        self.settings = settings
        self.typing_indicator = settings.typing_indicator
        self._id_hash_key = settings.id_hash_key
        self._attachment_reply = load_templates(settings.templates_path).render("attachment_only")
        # Started by `start`, when the server starts.
        self.graph: GraphApiClient | None = None
        self.dedupe: DedupeStore | None = None
        self.worker: DialogueWorker[Incoming] | None = None
        self.outbox: Outbox | None = None
        self.output: InstagramOutput | None = None
        self.app: ClinicApp | None = None
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None

    def start(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        app: ClinicApp | None = None,
        dedupe: DedupeStore | None = None,
    ) -> None:
        """Starts the Graph client, the dedupe store, the outbox and the dialogue worker."""
        settings = self.settings
        self._on_new_message = on_new_message
        self.app = app or ClinicApp.from_settings(settings)
        self.graph = GraphApiClient(
            self.access_token,
            id_hash_key=settings.id_hash_key,
            base_url=settings.graph_url,
            retry_policy=SEND_RETRY_POLICY,
        )
        self.dedupe = dedupe or dedupe_store(settings)
        self.outbox = Outbox(self.graph, settings.id_hash_key)
        self.output = InstagramOutput(self.outbox)
        self.worker = DialogueWorker(
            self._take_turn,
            key=lambda item: item.sender_id,
            max_concurrency=settings.max_concurrency,
        )
        self.worker.start()

    def stop(self) -> None:
        """Stops the worker and releases the Graph client's threads and connections."""
        if self.worker is not None:
            self.worker.stop()
        if self.graph is not None:
            self.graph.close()

    def wait_idle(self, timeout: float) -> bool:
        """True once every received message is handled and every reply sent."""
        deadline = time.monotonic() + timeout
        if not self.worker.wait_idle(timeout):
            return False
        while not self.outbox.is_idle():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def get_output_channel(self) -> OutputChannel:
        return self.output

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("instagram_webhook", __name__)

        @webhook.listener("before_server_start")
        async def start(_app: Any, _loop: Any) -> None:
            self.start(on_new_message)

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
        if len(body) > MAX_BODY_BYTES:
            logger.warning("instagram delivery rejected: too large (%d bytes)", len(body))
            return response.text("payload too large", status=413)
        if not signature_is_valid(body, signature_header, self.app_secret):
            logger.warning("instagram delivery rejected: bad or missing signature")
            return response.text("forbidden", status=403)
        try:
            items = parse_delivery(body)
        except BadDelivery as error:
            logger.warning("instagram delivery rejected: %s", error)
            return response.text("bad request", status=400)
        incoming = sorted(
            (item for item in items if isinstance(item, Incoming)), key=lambda i: i.timestamp
        )
        for item in items:
            if isinstance(item, Ignored):
                logger.info("instagram item ignored: %s", item.reason)
        for item in incoming:
            if await self.dedupe.first_time(item.mid):
                self.worker.submit(item)
            else:
                logger.info("instagram item duplicate sender=%s", self._ref(item.sender_id))
        return response.text("EVENT_RECEIVED")

    async def _take_turn(self, item: Incoming) -> None:
        """One message through the dialogue (on the worker's loop)."""
        logger.info(
            "instagram item processed kind=%s sender=%s", item.kind, self._ref(item.sender_id)
        )
        # Recorded alongside the turn, not before it: the patient is waiting for the reply.
        noted = asyncio.ensure_future(self._note_message(item.sender_id, item.timestamp))
        try:
            if item.kind == "attachment":
                self.outbox.put(item.sender_id, Reply(text=self._attachment_reply))
                return
            if self.typing_indicator:
                self.outbox.put(item.sender_id, Reply(action="typing_on"))
            message = UserMessage(
                text=item.text,
                output_channel=self.output,
                sender_id=item.sender_id,
                input_channel=self.name(),
                message_id=item.mid,
            )
            await self._on_new_message(message)
        finally:
            await noted

    async def _note_message(self, sender_id: str, timestamp_ms: int) -> None:
        """Remembers when a known patient last wrote: it opens Instagram's 24-hour window."""
        at = datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc) if timestamp_ms else None
        try:
            await asyncio.to_thread(self.app.note_message, sender_id, at or self.app.now())
        except Exception:  # noqa: BLE001 - the conversation goes on without it
            logger.warning("last-message time not recorded sender=%s", self._ref(sender_id))

    def _ref(self, sender_id: str) -> str:
        return hash_id(sender_id, self._id_hash_key)


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
