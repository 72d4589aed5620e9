"""The replies to one patient message, as Graph `message` objects numbered in order.

Rasa-free, so the channel's delivery process can write a reply (the note for an attachment)
as the rasa server's output channel does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from connectors.graph_api import custom_body, passing_control, text_bodies

# (recipient id, inbox message id, number of the reply, Graph `message`) -> stored and tried
SendReply = Callable[[str, str, int, dict[str, Any]], Awaitable[Any]]


class ReplyWriter:
    """Splits long texts, turns options into quick replies and numbers every reply after
    the message it answers (`inbox_mid`), so a turn run again stores each reply once."""

    def __init__(self, send: SendReply, inbox_mid: str, handoff_target: str):
        self._send = send
        self._inbox_mid = inbox_mid
        self._handoff_target = handoff_target
        self._seq = 0

    async def text(self, recipient_id: str, text: str, thread_control: str | None = None) -> None:
        """A text sent with `thread_control="pass"` (the hand-off) also passes the
        conversation to the hand-off target."""
        bodies = text_bodies(recipient_id, text)
        for body in bodies[:-1]:
            await self.reply(recipient_id, body["message"])
        last = bodies[-1]["message"]
        if thread_control == "pass":
            last = passing_control(last, self._handoff_target)
        await self.reply(recipient_id, last)

    async def with_options(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]]
    ) -> None:
        options = [(str(b.get("title", "")), str(b.get("payload", ""))) for b in buttons]
        for body in text_bodies(recipient_id, text, options):
            await self.reply(recipient_id, body["message"])

    async def image(self, recipient_id: str, url: str) -> None:
        await self.reply(recipient_id, {"attachment": {"type": "image", "payload": {"url": url}}})

    async def custom(self, recipient_id: str, json_message: dict[str, Any]) -> None:
        await self.reply(recipient_id, custom_body(recipient_id, json_message)["message"])

    async def reply(self, recipient_id: str, message: dict[str, Any]) -> None:
        seq, self._seq = self._seq, self._seq + 1
        await self._send(recipient_id, self._inbox_mid, seq, message)
