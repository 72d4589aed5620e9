"""Building Send API messages: long texts split to fit, options as quick replies, the
hand-off's `thread_control`, and the request body of a stored reply."""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from clinic.templates import MAX_QUICK_REPLIES, QUICK_REPLY_TITLE_LIMIT

TEXT_LIMIT_BYTES = 1000
QuickReply = tuple[str, str]  # (title, payload)

_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)")
_ZERO_WIDTH_JOINER = "\u200d"


def split_text(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Splits `text` into parts of at most `limit` bytes of UTF-8, in order.

    Each cut is at the last sentence end or line break that fits, else at the last space, else
    after the last whole character (not between an emoji and its modifier). Whitespace around a
    cut is dropped; text that fits is returned unchanged and blank text gives no parts.
    E.g. limit 20: "Hello there. How are you today?" -> ["Hello there.", "How are you today?"].
    """
    if limit < 4:
        raise ValueError("limit must hold any character (4 bytes)")
    if not text.strip():
        return []
    if _utf8_length(text) <= limit:
        return [text]
    # offsets[i] is the size of text[:i] in bytes.
    offsets = list(itertools.accumulate((_utf8_length(char) for char in text), initial=0))
    parts = []
    start = _skip_spaces(text, 0)
    while start < len(text):
        end = bisect.bisect_right(offsets, offsets[start] + limit) - 1
        cut = len(text) if end >= len(text) else _cut_position(text, start, end)
        parts.append(text[start:cut].rstrip())
        start = _skip_spaces(text, cut)
    return parts


def _cut_position(text: str, start: int, end: int) -> int:
    """Where to end the part that starts at `start` and may reach `end` (exclusive)."""
    line_break = text.rfind("\n", start + 1, end + 1)
    sentence_ends = [match.end() for match in _SENTENCE_END.finditer(text, start, end + 1)]
    best = max([line_break, *sentence_ends])
    if best > start:
        return best
    for position in range(end, start, -1):
        if text[position].isspace():
            return position
    cut = end
    while cut > start + 1 and _inside_cluster(text[cut - 1], text[cut]):
        cut -= 1
    return cut


def _inside_cluster(before: str, after: str) -> bool:
    """True when a cut between the two would split what readers see as one character."""
    return (
        unicodedata.category(after) in ("Mn", "Mc", "Me")  # accents, variation selectors
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin tones
        or "\U000e0020" <= after <= "\U000e007f"  # tags of subdivision flags
        or _ZERO_WIDTH_JOINER in (before, after)
    )


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def text_messages(text: str, quick_replies: Sequence[QuickReply] | None = None) -> list[dict]:
    """The `message` objects that carry `text` split to fit; at most 13 quick replies go
    with the last part, their titles cut to 20 characters."""
    parts = split_text(text)
    if not parts:
        raise ValueError("text is blank")
    messages: list[dict[str, Any]] = [{"text": part} for part in parts]
    if quick_replies:
        messages[-1]["quick_replies"] = [
            {"content_type": "text", "title": title[:QUICK_REPLY_TITLE_LIMIT], "payload": payload}
            for title, payload in quick_replies[:MAX_QUICK_REPLIES]
        ]
    return messages


def passing_control(message: dict[str, Any], target_app_id: str) -> dict[str, Any]:
    """A reply that also hands the conversation to `target_app_id` (Conversation Routing:
    `thread_control` on the Send API), as the outbox stores it."""
    return {"message": message, "thread_control": {"app_id": target_app_id, "control_type": "pass"}}


def request_body(recipient_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The Send API body of a reply as the outbox stores it: a Graph `message`, or one
    wrapped with its `thread_control` (`passing_control`)."""
    if "thread_control" in stored:
        return {"recipient": {"id": recipient_id}, **stored}
    return {"recipient": {"id": recipient_id}, "message": stored}


def typing_body(recipient_id: str) -> dict[str, Any]:
    return {"recipient": {"id": recipient_id}, "sender_action": "typing_on"}
