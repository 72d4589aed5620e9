"""A patient on Instagram, for end-to-end tests: sends signed webhooks, reads the DMs the
fake Graph API received."""

from __future__ import annotations

from connectors.fake_graph import FakeGraphApi
from connectors.simulate import delivery, post_delivery
from tests.helpers import wait_until


class InstagramPatient:
    def __init__(self, rasa_url: str, graph: FakeGraphApi, sender_id: str, app_secret: str):
        self.rasa_url, self.graph, self.sender_id = rasa_url, graph, sender_id
        self.app_secret = app_secret
        self.read = 0

    def messages(self) -> list[dict]:
        return [b["message"] for b in self.graph.messages_to(self.sender_id) if "message" in b]

    def say(
        self, text: str, payload: str | None = None, replies: int = 1, standby: bool = False
    ) -> list[dict]:
        """Sends a message (or taps a quick reply; on the standby channel, as Meta does
        while another app holds the conversation) and waits for `replies` answers."""
        body = delivery(self.sender_id, text, quick_reply_payload=payload, standby=standby)
        assert post_delivery(self.rasa_url, body, self.app_secret) == 200
        expected = self.read + replies
        assert wait_until(lambda: len(self.messages()) >= expected, 60), self.messages()
        new = self.messages()[self.read : expected]
        self.read = expected
        return new

    def tap(self, message: dict, number: int, replies: int = 1) -> list[dict]:
        option = message["quick_replies"][number - 1]
        return self.say(option["title"], option["payload"], replies)
