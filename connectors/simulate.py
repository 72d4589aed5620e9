"""Chat with the running bot as an Instagram user, from the terminal.

Your messages go to the rasa server as signed Meta webhooks; the bot's replies are
read back from the fake Graph API. `make simulate` starts everything this needs.

    python -m connectors.simulate --rasa-url http://127.0.0.1:5005 \\
        --graph-url http://127.0.0.1:8765 --app-secret SECRET

Type a message, or `#2` to tap the second quick reply of the last answer; Ctrl-D quits.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import urllib.request
import uuid
from typing import Any

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
) -> bytes:
    """A Meta webhook body for one message, escaped the way Meta sends it."""
    timestamp = timestamp_ms or int(time.time() * 1000)
    message: dict[str, Any] = {"mid": mid or f"mid.{uuid.uuid4().hex}", "text": text}
    if quick_reply_payload is not None:
        message["quick_reply"] = {"payload": quick_reply_payload}
    item = {
        "sender": {"id": sender_id},
        "recipient": {"id": PAGE_ID},
        "timestamp": timestamp + next(_counter) % 1000,
        "message": message,
    }
    payload = {
        "object": "instagram",
        "entry": [{"id": PAGE_ID, "time": timestamp, "messaging": [item]}],
    }
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
    """The messages the fake Graph API accepted for one recipient (sender actions left out)."""
    with urllib.request.urlopen(f"{graph_url.rstrip('/')}/_fake/delivered", timeout=10) as r:  # noqa: S310
        records = json.loads(r.read())
    bodies = [record["body"] for record in records]
    return [
        b for b in bodies if b.get("recipient", {}).get("id") == recipient_id and "message" in b
    ]


def chat(rasa_url: str, graph_url: str, app_secret: str, sender_id: str) -> None:
    seen = len(delivered_to(graph_url, sender_id))
    quick_replies: list[dict[str, str]] = []
    print("You are an Instagram user. Type a message, #N to tap a quick reply, Ctrl-D to quit.")
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            print()
            return
        if not text:
            continue
        payload = None
        if text.startswith("#") and text[1:].isdigit() and 0 < int(text[1:]) <= len(quick_replies):
            chosen = quick_replies[int(text[1:]) - 1]
            text, payload = chosen["title"], chosen["payload"]
        post_delivery(rasa_url, delivery(sender_id, text, quick_reply_payload=payload), app_secret)
        replies = _wait_for_replies(graph_url, sender_id, seen)
        seen += len(replies)
        for reply in replies:
            message = reply["message"]
            print(f"bot> {message.get('text', json.dumps(message))}")
            quick_replies = message.get("quick_replies") or quick_replies
            for number, option in enumerate(message.get("quick_replies") or [], 1):
                print(f"     #{number} {option['title']}")


def _wait_for_replies(graph_url: str, sender_id: str, seen: int) -> list[dict[str, Any]]:
    """Replies after the first `seen`, once none came for a moment (or after 30 s)."""
    deadline, quiet_since, count = time.monotonic() + 30, time.monotonic(), seen
    while time.monotonic() < deadline:
        messages = delivered_to(graph_url, sender_id)
        if len(messages) != count:
            count, quiet_since = len(messages), time.monotonic()
        elif count > seen and time.monotonic() - quiet_since > 1.0:
            break
        time.sleep(0.1)
    return delivered_to(graph_url, sender_id)[seen:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rasa-url", default="http://127.0.0.1:5005")
    parser.add_argument("--graph-url", default="http://127.0.0.1:8765")
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--sender-id", default=f"IG_SIM_{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    chat(args.rasa_url, args.graph_url, args.app_secret, args.sender_id)


if __name__ == "__main__":
    main()
