"""Chat with the running bot as an Instagram user, from the terminal.

Your messages go to the rasa server as signed Meta webhooks; the bot's replies are
read back from the fake Graph API. `make simulate` starts everything this needs.

    python -m connectors.simulate --rasa-url http://127.0.0.1:5005 \\
        --graph-url http://127.0.0.1:8765 --app-secret SECRET

Type a message, or `#2` to tap the second quick reply of the last answer; Ctrl-D quits.
As the clinic's staff, `/staff TEXT` writes to the user from the Instagram app and
`/handback` hands the conversation back to the bot; passing and taking thread control are
shown as they reach the fake Graph API.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from clinic.settings import INSTAGRAM_INBOX_APP_ID
from connectors.webhook import SIGNATURE_HEADER, signature

PAGE_ID = "17841400000000001"
_counter = itertools.count()


def delivery(
    sender_id: str,
    text: str,
    *,
    quick_reply_payload: str | None = None,
    mid: str | None = None,
    timestamp_ms: int | None = None,
    standby: bool = False,
) -> bytes:
    """A Meta webhook body for one message, escaped the way Meta sends it; on the `standby`
    channel when another app holds the conversation."""
    message: dict[str, Any] = {"mid": mid or f"mid.{uuid.uuid4().hex}", "text": text}
    if quick_reply_payload is not None:
        message["quick_reply"] = {"payload": quick_reply_payload}
    item = {"sender": {"id": sender_id}, "recipient": {"id": PAGE_ID}, "message": message}
    return _wrap(item, timestamp_ms, "standby" if standby else "messaging")


def echo_delivery(
    patient_id: str, text: str, *, app_id: str | None = None, mid: str | None = None
) -> bytes:
    """A message the clinic's account sent to the patient, as Meta echoes it: typed by staff
    in the Instagram app (no `app_id`), or sent by an app (its id)."""
    message: dict[str, Any] = {
        "mid": mid or f"mid.{uuid.uuid4().hex}",
        "text": text,
        "is_echo": True,
    }
    if app_id is not None:
        message["app_id"] = int(app_id) if app_id.isdigit() else app_id
    return _wrap({"sender": {"id": PAGE_ID}, "recipient": {"id": patient_id}, "message": message})


def handover_delivery(patient_id: str, new_owner_app_id: str, previous_owner_app_id: str) -> bytes:
    """`messaging_handovers`: the conversation with the patient passed to `new_owner_app_id`."""
    control = {
        "previous_owner_app_id": previous_owner_app_id,
        "new_owner_app_id": new_owner_app_id,
        "metadata": "",
    }
    item = {"sender": {"id": patient_id}, "recipient": {"id": PAGE_ID}}
    return _wrap({**item, "pass_thread_control": control})


def _wrap(item: dict[str, Any], timestamp_ms: int | None = None, field: str = "messaging") -> bytes:
    """One item in a delivery as Meta sends it, escaped the way Meta escapes it."""
    timestamp = timestamp_ms or int(time.time() * 1000)
    item = {**item, "timestamp": timestamp + next(_counter) % 1000}
    payload = {"object": "instagram", "entry": [{"id": PAGE_ID, "time": timestamp, field: [item]}]}
    return json.dumps(payload, ensure_ascii=True).encode()


def post_delivery(rasa_url: str, body: bytes, app_secret: str, timeout: float = 10) -> int:
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own server
        f"{rasa_url.rstrip('/')}/webhooks/instagram/webhook",
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, app_secret)},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.status


def delivered_to(graph_url: str, recipient_id: str) -> list[dict[str, Any]]:
    """The requests the fake Graph API accepted for one recipient: messages and control
    changes (typing indicators left out)."""
    with urllib.request.urlopen(f"{graph_url.rstrip('/')}/_fake/delivered", timeout=10) as r:  # noqa: S310
        records = json.loads(r.read())
    return [
        {**record["body"], "path": record["path"]}
        for record in records
        if record["body"].get("recipient", {}).get("id") == recipient_id
        and "sender_action" not in record["body"]
    ]


def chat(
    rasa_url: str,
    graph_url: str,
    app_secret: str,
    sender_id: str,
    app_id: str,
    texts: TextsSeen | None = None,
) -> None:
    seen = len(delivered_to(graph_url, sender_id))
    quick_replies: list[dict[str, str]] = []
    print(
        "You are an Instagram user. Type a message, #N to tap a quick reply, Ctrl-D to quit.\n"
        "As the clinic's staff: /staff TEXT writes from the Instagram app, /handback hands "
        "the conversation back to the bot."
    )
    if texts is not None:
        print(
            "Text messages: /remind runs the reminder job now (visits of the next 30 days "
            "are due), /text WORDS answers the last text (C, X, YES, STOP…)."
        )
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            print()
            return
        if not text:
            continue
        if texts is not None and texts.command(text, rasa_url):
            continue
        body = _staff_action(text, sender_id, app_id)
        as_patient = body is None
        if as_patient:
            payload = None
            chosen = _chosen(text, quick_replies)
            if chosen is not None:
                text, payload = chosen["title"], chosen["payload"]
            body = delivery(sender_id, text, quick_reply_payload=payload)
        post_delivery(rasa_url, body, app_secret)
        replies = _wait_for_replies(graph_url, sender_id, seen)
        seen += len(replies)
        if as_patient and not replies:
            print("     (no reply: the bot is quiet while staff have the conversation)")
        for reply in replies:
            print(_shown(reply))
            message = reply.get("message") or {}
            quick_replies = message.get("quick_replies") or quick_replies
            for number, option in enumerate(message.get("quick_replies") or [], 1):
                print(f"     #{number} {option['title']}")
        if texts is not None:
            texts.show_new()


class TextsSeen:
    """The fake Twilio's texts as the chat shows them, and a patient's answer to one."""

    def __init__(self, twilio_url: str):
        self.url = twilio_url.rstrip("/")
        self.shown = len(self._texts())
        self.last_phone: str | None = None

    def _texts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_fake/texts", timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())

    def show_new(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        while True:
            texts = self._texts()
            if len(texts) > self.shown or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        for text in texts[self.shown :]:
            print(f"text to {text['to']}> {text['body']}")
            self.last_phone = text["to"]
        self.shown = len(texts)

    def command(self, line: str, rasa_url: str) -> bool:
        """Runs /remind or /text; False for anything else."""
        if line == "/remind":
            env = {**os.environ, "REMINDER_LEAD_HOURS": "720"}
            subprocess.run([sys.executable, "-m", "clinic", "remind"], env=env, check=False)  # noqa: S603
            self.show_new(wait=3.0)
            return True
        if line.startswith("/text "):
            if self.last_phone is None:
                print("     (no text yet: /remind sends the reminders that are due)")
                return True
            data = {
                "phone": self.last_phone,
                "body": line.removeprefix("/text ").strip(),
                "url": f"{rasa_url.rstrip('/')}/webhooks/twilio/sms",
            }
            request = urllib.request.Request(  # noqa: S310 - the fake on loopback
                f"{self.url}/_fake/reply",
                data=json.dumps(data).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=30).close()  # noqa: S310
            self.show_new(wait=5.0)
            return True
        return False


def _staff_action(text: str, sender_id: str, app_id: str) -> bytes | None:
    if text.startswith("/staff "):
        return echo_delivery(sender_id, text.removeprefix("/staff ").strip() or "…")
    if text == "/handback":
        return handover_delivery(sender_id, app_id, INSTAGRAM_INBOX_APP_ID)
    return None


def _chosen(text: str, quick_replies: list[dict[str, str]]) -> dict[str, str] | None:
    if text.startswith("#") and text[1:].isdigit() and 0 < int(text[1:]) <= len(quick_replies):
        return quick_replies[int(text[1:]) - 1]
    return None


def _shown(reply: dict[str, Any]) -> str:
    """A request the bot made, as the chat shows it: its text, and any change of control."""
    if reply["path"].endswith("/take_thread_control"):
        return "     [the bot takes the conversation back]"
    message = reply.get("message") or {}
    line = f"bot> {message.get('text', json.dumps(message))}"
    control = reply.get("thread_control")
    if control:
        line += (
            f"\n     [{control.get('control_type')} thread control to app "
            f"{control.get('app_id')}: the bot stays quiet until it comes back]"
        )
    return line


def _wait_for_replies(graph_url: str, sender_id: str, seen: int) -> list[dict[str, Any]]:
    """Replies after the first `seen`, once none came for a moment (or after 5 s when none
    come: a quiet bot, for instance while staff have the conversation)."""
    start = time.monotonic()
    deadline, quiet_since, count = start + 30, start, seen
    while time.monotonic() < deadline:
        messages = delivered_to(graph_url, sender_id)
        if len(messages) != count:
            count, quiet_since = len(messages), time.monotonic()
        elif time.monotonic() - quiet_since > (1.0 if count > seen else 5.0):
            break
        time.sleep(0.1)
    return delivered_to(graph_url, sender_id)[seen:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rasa-url", default="http://127.0.0.1:5005")
    parser.add_argument("--graph-url", default="http://127.0.0.1:8765")
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--sender-id", default=f"IG_SIM_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--app-id", default="1000000000000001", help="INSTAGRAM_APP_ID")
    parser.add_argument("--twilio-url", help="the fake Twilio, to show texts and answer them")
    args = parser.parse_args()
    texts = TextsSeen(args.twilio_url) if args.twilio_url else None
    chat(args.rasa_url, args.graph_url, args.app_secret, args.sender_id, args.app_id, texts)


if __name__ == "__main__":
    main()
