"""The Instagram channel in the rasa server: Meta's webhooks in, Graph API messages out,
nothing lost between (docs/delivery.md). Configured in credentials.yml under
`connectors.instagram.InstagramInput` (`verify_token`, `app_secret`, `access_token`, each
`${INSTAGRAM_…}` by default) and by the settings (README). The channel
(connectors/channel_core.py) opens with the server and runs on its event loop; this module
adds Rasa: the messages Rasa reads, the output channel it writes to, the web routes."""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic.delivery import InboxItem
from clinic.outbox import Reply
from clinic.redaction import REDACTOR
from clinic.settings import load_settings
from connectors.channel_core import Converse, InstagramChannel, Replay
from connectors.heap import freeze_startup_objects
from connectors.log_levels import follow_rasa_log_level
from connectors.replies import InstagramOutput
from connectors.webhook import MAX_BODY_BYTES, SIGNATURE_HEADER

logger = logging.getLogger(__name__)

# (sender id, mid) -> None if the conversation does not hold that message yet, else the
# bot's answers to it there (as Rasa hands them to an output channel).
AnswersIfHandled = Callable[[str, str], Awaitable[list[dict[str, Any]] | None]]
OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class InstagramInput(InstagramChannel, InputChannel):
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

    def get_output_channel(self) -> OutputChannel:
        """For messages outside a turn (Rasa's HTTP API): each stored and sent at once."""
        target = self.settings.handoff_target_app_id
        return InstagramOutput(f"out-{time.time_ns()}", target, self._store_and_send)

    async def _store_and_send(self, replies: list[Reply]) -> None:
        stored = await self._io(self.outbox.store, replies)
        await self._io(self.sender.send, stored.leased)

    def dialogue(
        self, on_new_message: OnNewMessage, answers_if_handled: AnswersIfHandled | None = None
    ) -> tuple[Converse, Replay]:
        """What the channel's turns ask of Rasa: a message through the dialogue, and the
        answers a conversation already holds written again."""

        async def converse(item: InboxItem, output: InstagramOutput) -> None:
            REDACTOR.register(item.sender_id, item.text)  # never in a log line
            await on_new_message(
                UserMessage(
                    item.text,
                    output,
                    item.sender_id,
                    input_channel="instagram",
                    message_id=item.mid,
                )
            )

        async def replay(item: InboxItem, output: InstagramOutput) -> bool:
            answers = answers_if_handled and await answers_if_handled(item.sender_id, item.mid)
            for answer in answers or []:
                await output.send_response(item.sender_id, dict(answer))
            return answers is not None

        return converse, replay

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = Blueprint("instagram_webhook", __name__)

        @webhook.listener("before_server_start")
        async def open_channel(app: Any, _loop: Any) -> None:
            # Sanic would buffer up to 100 MB before the channel could refuse a body.
            app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
            await self.open(*self.dialogue(on_new_message, _tracker_lookup(app)))

        @webhook.listener("after_server_start")
        async def start_turns(_app: Any, _loop: Any) -> None:
            freeze_startup_objects()
            self.start_turns()  # Rasa's agent is loaded by now

        @webhook.listener("before_server_stop")
        async def drain(_app: Any, _loop: Any) -> None:
            await self.drain()

        @webhook.listener("after_server_stop")
        async def stop(_app: Any, _loop: Any) -> None:
            await self.stop()

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
        first = {name: (v[0] if isinstance(v, list) and v else v) for name, v in args.items()}
        token = first.get("hub.verify_token") or ""
        if first.get("hub.mode") == "subscribe" and token and _same(token, self.verify_token):
            logger.info("instagram webhook verified")
            return response.text(first.get("hub.challenge") or "")
        logger.warning("instagram webhook verification refused")
        return response.text("forbidden", status=403)

    async def receive(self, body: bytes, signature_header: str | None) -> HTTPResponse:
        status, text = await self.take_delivery(body, signature_header)
        return response.text(text, status=status)


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
        if not os.environ.get(match.group(1)):
            raise ValueError(f"the Instagram channel needs the environment variable {match[1]}")
        return os.environ[match.group(1)]

    return re.sub(r"\$\{(\w+)\}", lookup, value)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
