"""Meta's Instagram webhook deliveries, read without any I/O: signature and items.

A delivery holds entries, each with `messaging[]` items (or, from the dashboard's
test button, `changes[]` with `field: messages`). Every item becomes exactly one
`Incoming` (something for the bot), `StaffWrote` or `ControlReturned` (staff taking over
or handing back), or `Ignored` (with the reason, for the logs). An entry for another
account than the clinic's (INSTAGRAM_ACCOUNT_ID, when set) is one `Ignored("other_account")`.

Times are Meta's milliseconds. One outside 2010-01-01 .. a day from now (or not a number)
is never trusted: the item's time is its entry's `time`, else the time it arrived.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
# What the inbox stores of an id; Meta's are far shorter.
MAX_ID_LENGTH = 64
MAX_MID_LENGTH = 255
SIGNATURE_HEADER = "X-Hub-Signature-256"
# The plausible times of a message, in milliseconds: since 2010-01-01, up to a day ahead.
EARLIEST_MS = 1_262_304_000_000
AHEAD_MS = 24 * 3600 * 1000


class BadDelivery(ValueError):
    """The body is not JSON or not an Instagram delivery (answered with 400)."""


@dataclass(frozen=True)
class Incoming:
    """A patient's message for the bot: text, a quick-reply or postback payload, or an
    attachment (which the bot cannot read and answers with a short note)."""

    sender_id: str
    mid: str
    timestamp: int
    text: str
    kind: str  # "text", "quick_reply", "postback" or "attachment"
    standby: bool = False  # delivered while another app holds the conversation


@dataclass(frozen=True)
class StaffWrote:
    """Someone at the clinic wrote to the patient from another app (the Instagram app
    itself sends echoes with no app id): the bot keeps quiet for a while."""

    patient_id: str
    timestamp: int
    mid: str | None = None  # the echo's id: a message the bot sent is never staff's


@dataclass(frozen=True)
class ControlReturned:
    """The conversation was passed back to our app (`messaging_handovers`)."""

    patient_id: str
    timestamp: int


@dataclass(frozen=True)
class Ignored:
    reason: str  # "echo", "handover", "read", "reaction", "edit", "deleted", "unsupported", …


Item = Incoming | StaffWrote | ControlReturned | Ignored


def signature(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body` (tests sign with it too)."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_is_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time check of the HMAC-SHA256 of the raw body, exactly as received."""
    if not header or not app_secret:
        return False
    return hmac.compare_digest(signature(body, app_secret).encode(), header.strip().encode())


def parse_delivery(
    body: bytes,
    own_app_id: str | None = None,
    account_id: str | None = None,
    now_ms: int | None = None,
) -> list[Item]:
    """All items of one delivery, in the order Meta listed them. Each item is read on its
    own: a malformed one becomes `Ignored("malformed")` and never spoils the others.
    `own_app_id` (INSTAGRAM_APP_ID) tells our echoes and hand-backs from others';
    `account_id` (INSTAGRAM_ACCOUNT_ID) is the clinic's account; `now_ms` the arrival time."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BadDelivery("body is not JSON, or nested too deeply") from error
    if not isinstance(payload, dict) or payload.get("object") != "instagram":
        raise BadDelivery("not an Instagram delivery")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise BadDelivery("no entries")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    items: list[Item] = []
    for entry in entries:
        if not isinstance(entry, dict):
            items.append(Ignored("malformed"))
        elif account_id and str(entry.get("id")) != account_id:
            items.append(Ignored("other_account"))
        else:
            entry_ms = plausible_ms(entry.get("time"), now_ms) or now_ms
            for item, standby in _items(entry):
                items.append(_marked(read_item(item, own_app_id, entry_ms, now_ms), standby))
    return items


def _marked(item: Item, standby: bool) -> Item:
    return replace(item, standby=True) if standby and isinstance(item, Incoming) else item


def _items(entry: dict[str, Any]) -> Iterator[tuple[Any, bool]]:
    """The items of an entry, each with whether it came on the `standby` channel (Meta
    uses it while another app holds the conversation); something that can't hold items
    stands for one bad item."""
    for name in ("messaging", "standby", "changes"):
        items = entry.get(name)
        if items is None:
            continue
        if not isinstance(items, list):
            yield None, False
            continue
        for item in items:
            if name != "changes":
                yield item, name == "standby"
            elif isinstance(item, dict) and item.get("field") == "messages":
                yield item.get("value"), False


def read_item(item: Any, own_app_id: str | None, fallback_ms: int, now_ms: int) -> Item:
    """One `messaging` item: what the patient said, staff's doing, or why there is nothing
    to answer. Its time is its `timestamp` when plausible, else `fallback_ms`."""
    try:
        timestamp = plausible_ms(item.get("timestamp"), now_ms) or fallback_ms
        return _read_item(item, own_app_id, timestamp)
    except Exception:  # noqa: BLE001 - one odd item must not cost the others
        return Ignored("malformed")


def _read_item(item: dict[str, Any], own_app_id: str | None, timestamp: int) -> Item:
    sender_id = _id_of(item.get("sender"))
    handover = item.get("pass_thread_control")
    if isinstance(handover, dict):
        new_owner = str(handover.get("new_owner_app_id") or "")
        if own_app_id and new_owner == own_app_id and _is_id(sender_id):
            return ControlReturned(sender_id, timestamp)
        return Ignored("handover")
    for key, reason in (("read", "read"), ("reaction", "reaction"), ("message_edit", "edit")):
        if key in item:
            return Ignored(reason)
    postback = item.get("postback")
    if isinstance(postback, dict):
        text = postback.get("payload") or postback.get("title") or ""
        return _incoming(sender_id, postback.get("mid"), timestamp, text, "postback")
    message = item.get("message")
    if not isinstance(message, dict):
        return Ignored("unsupported")
    if message.get("is_echo"):
        return _echo(message, _id_of(item.get("recipient")), timestamp, own_app_id)
    if message.get("is_deleted"):
        return Ignored("deleted")
    if message.get("is_unsupported"):
        return Ignored("unsupported")
    quick_reply = message.get("quick_reply")
    if quick_reply is not None:
        payload = quick_reply.get("payload") if isinstance(quick_reply, dict) else None
        return _incoming(sender_id, message.get("mid"), timestamp, payload, "quick_reply")
    text = message.get("text")
    if isinstance(text, str) and text.strip():
        return _incoming(sender_id, message.get("mid"), timestamp, text, "text")
    if text is not None and not isinstance(text, str):
        return Ignored("malformed")
    if message.get("attachments"):
        return _incoming(sender_id, message.get("mid"), timestamp, "", "attachment")
    return Ignored("unsupported")


def _echo(message: dict, patient_id: Any, timestamp: int, own_app_id: str | None) -> Item:
    """A message the clinic's account sent. Ours (our app id; any app id while
    INSTAGRAM_APP_ID is not set) changes nothing; another app's, or one typed in the
    Instagram app (no app id), is staff writing, unless its mid is one the bot sent
    (checked against the database by the channel)."""
    app_id = message.get("app_id")
    if app_id is not None and (own_app_id is None or str(app_id) == own_app_id):
        return Ignored("echo")
    if not _is_id(patient_id):
        return Ignored("malformed")
    mid = message.get("mid")
    return StaffWrote(patient_id, timestamp, mid if isinstance(mid, str) else None)


def _id_of(party: Any) -> Any:
    """The `id` of a `sender` or `recipient`; Meta's numeric ids as strings."""
    value = party.get("id") if isinstance(party, dict) else None
    return str(value) if type(value) is int and value > 0 else value


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _incoming(sender: Any, mid: Any, timestamp: int, text: Any, kind: str) -> Item:
    """An item for the bot, if its ids are ids and its text (or payload) is a string."""
    if not _is_id(sender):
        return Ignored("malformed")
    if not (isinstance(mid, str) and 0 < len(mid) <= MAX_MID_LENGTH) or not isinstance(text, str):
        return Ignored("malformed")
    if kind != "attachment" and not text:
        return Ignored("malformed")
    return Incoming(sender, mid, timestamp, text, kind)


def plausible_ms(value: Any, now_ms: int) -> int | None:
    """`value` as Meta's millisecond time, or None when it is not one: not a whole number,
    before 2010-01-01, or more than a day after `now_ms`."""
    if type(value) is str and value.isdigit():
        value = int(value)
    if type(value) is not int or not EARLIEST_MS <= value <= now_ms + AHEAD_MS:
        return None
    return value
