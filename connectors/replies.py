"""The output channel of a turn: it collects the bot's messages as the outbox stores them
(long texts split, buttons as quick replies, each numbered after what it answers, so the
same turn stored twice keeps each message once); the channel stores them when the turn ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel

from clinic.outbox import Reply
from connectors.graph_messages import passing_control, text_messages


class InstagramOutput(OutputChannel):
    """`take()` hands over what was written since the last call. With `send_now`, each
    message is handed to it as it comes (outside a turn: Rasa's HTTP API)."""

    def __init__(
        self,
        origin: str,
        handoff_target: str,
        send_now: Callable[[list[Reply]], Awaitable[None]] | None = None,
    ):
        self._origin = origin
        self._handoff_target = handoff_target
        self._send_now = send_now
        self._replies: list[Reply] = []
        self._seq = 0

    @classmethod
    def name(cls) -> str:
        return "instagram"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """With `thread_control="pass"` (the hand-off), the last part also passes the
        conversation to the hand-off target."""
        *parts, last = text_messages(text)
        if kwargs.get("thread_control") == "pass":
            last = passing_control(last, self._handoff_target)
        await self.add(recipient_id, *parts, last)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        options = [(str(b.get("title", "")), str(b.get("payload", ""))) for b in buttons]
        await self.add(recipient_id, *text_messages(text, options))

    send_quick_replies = send_text_with_buttons

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.add(recipient_id, {"attachment": {"type": "image", "payload": {"url": image}}})

    async def send_custom_json(self, recipient_id: str, json_message: dict, **kwargs: Any) -> None:
        await self.add(recipient_id, json_message)

    async def add(self, recipient_id: str, *messages: dict[str, Any]) -> None:
        for message in messages:
            self._replies.append(Reply(recipient_id, self._origin, self._seq, message))
            self._seq += 1
        if self._send_now is not None:
            await self._send_now(self.take())

    def take(self) -> list[Reply]:
        replies, self._replies = self._replies, []
        return replies
