"""Sending to Instagram: `POST {base_url}/me/messages` on the Graph API, with typed outcomes.

Every answer becomes one `Outcome` (`Sent`, `Throttled`, `Unavailable`, `Rejected`); the retry
loops read that and nothing else. Failures reach callers as `SendError` subclasses.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import logging
import math
import random
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from clinic.audit import hash_id
from clinic.settings import Settings, SettingsError
from clinic.templates import MAX_QUICK_REPLIES, QUICK_REPLY_TITLE_LIMIT

logger = logging.getLogger(__name__)

TEXT_LIMIT_BYTES = 1000
# Rate limits (4, 17, 32, 613, 80002) and transient API faults (1, 2): worth another try later.
THROTTLING_CODES = frozenset({1, 2, 4, 17, 32, 613, 80002})
OUTSIDE_WINDOW_CODE = 10
OUTSIDE_WINDOW_SUBCODE = 2534022
RECIPIENT_UNAVAILABLE_CODE = 551
INVALID_TOKEN_CODE = 190

SenderAction = Literal["typing_on", "typing_off", "mark_seen"]
SENDER_ACTIONS: frozenset[str] = frozenset({"typing_on", "typing_off", "mark_seen"})
QuickReply = tuple[str, str]  # (title, payload)
Body = Mapping[str, Any]


@dataclass(frozen=True)
class Sent:
    """Graph accepted the request. Sender actions are acknowledged without a message id."""

    message_id: str | None


@dataclass(frozen=True)
class Throttled:
    """HTTP 429 or a rate-limit code: try again, after `retry_after` seconds when Graph says."""

    retry_after: float | None
    code: int | None


@dataclass(frozen=True)
class Unavailable:
    """No usable answer (network error, timeout, 5xx, unreadable body): try again."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Rejected:
    """Graph refused the request for good: the same request would fail the same way."""

    code: int | None
    subcode: int | None
    http_status: int


Outcome = Sent | Throttled | Unavailable | Rejected


class SendError(Exception):
    """A message could not be delivered."""


class PermanentSendError(SendError):
    """Graph rejected the request; it was not retried."""

    def __init__(self, code: int | None, subcode: int | None, http_status: int | None = None):
        super().__init__(f"Graph API rejected the request: code={code} subcode={subcode}")
        self.code = code
        self.subcode = subcode
        self.http_status = http_status


class OutsideWindowError(PermanentSendError):
    """The patient's last message is more than 24 hours old: only they can reopen the window."""


class RecipientUnavailableError(PermanentSendError):
    """Code 551: the account can't receive messages now (blocked us, deactivated, restricted)."""


class InvalidTokenError(PermanentSendError):
    """Code 190: the access token is wrong, expired or revoked."""


class RetriesExhaustedError(SendError):
    """Every attempt was throttled or failed to get an answer."""

    def __init__(self, last_outcome: Throttled | Unavailable, attempts: int):
        super().__init__(f"gave up after {attempts} attempts: {describe(last_outcome)}")
        self.last_outcome = last_outcome
        self.attempts = attempts


def permanent_error(rejected: Rejected) -> PermanentSendError:
    """The exception that tells callers what a `Rejected` outcome means."""
    error_type = PermanentSendError
    if rejected.code == OUTSIDE_WINDOW_CODE and rejected.subcode in (OUTSIDE_WINDOW_SUBCODE, None):
        error_type = OutsideWindowError
    elif rejected.code == RECIPIENT_UNAVAILABLE_CODE:
        error_type = RecipientUnavailableError
    elif rejected.code == INVALID_TOKEN_CODE:
        error_type = InvalidTokenError
    return error_type(rejected.code, rejected.subcode, rejected.http_status)


def classify_response(status: int, content: bytes, retry_after: str | None = None) -> Outcome:
    """Maps one HTTP answer of `/me/messages` (status, raw body, Retry-After) onto an `Outcome`."""
    seconds = parse_retry_after(retry_after)
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    code, subcode = _error_codes(error)
    if status == 429 or code in THROTTLING_CODES:
        return Throttled(seconds, code)
    if code is not None:
        return Rejected(code, subcode, status)
    if 200 <= status < 300:
        if isinstance(body, dict) and error is None:
            message_id = body.get("message_id")
            return Sent(message_id if isinstance(message_id, str) else None)
        return Unavailable(f"unreadable body (HTTP {status})")
    if status == 408 or status >= 500:
        return Unavailable(f"HTTP {status}", seconds if status == 503 else None)
    return Rejected(None, None, status)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header; None when absent or not a number of seconds."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _error_codes(error: object) -> tuple[int | None, int | None]:
    if not isinstance(error, dict):
        return None, None
    return _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins, up to a ceiling."""

    base: float = 0.5
    cap: float = 15.0
    max_attempts: int = 8
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (the first is 1).

        Without Retry-After: uniform in [0, min(cap, base * 2 ** (attempt - 1))]; with the
        defaults the ceiling is 0.5 s after attempt 1, then 1, 2, 4, 8, and 15 s from attempt 6.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.cap, self.base * 2 ** min(attempt - 1, 64))
        return rng.uniform(0.0, ceiling)


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


def text_body(
    recipient_id: str, text: str, quick_replies: Sequence[QuickReply] | None = None
) -> dict[str, Any]:
    """One text message; at most 13 quick replies are kept, their titles cut to 20 characters."""
    message: dict[str, Any] = {"text": text}
    if quick_replies:
        message["quick_replies"] = [
            {"content_type": "text", "title": title[:QUICK_REPLY_TITLE_LIMIT], "payload": payload}
            for title, payload in quick_replies[:MAX_QUICK_REPLIES]
        ]
    return {"recipient": {"id": recipient_id}, "message": message}


def text_bodies(
    recipient_id: str, text: str, quick_replies: Sequence[QuickReply] | None = None
) -> list[dict[str, Any]]:
    """The bodies that carry `text` split to fit; the quick replies go with the last part."""
    parts = split_text(text)
    if not parts:
        raise ValueError("text is blank")
    last = len(parts) - 1
    return [
        text_body(recipient_id, part, quick_replies if index == last else None)
        for index, part in enumerate(parts)
    ]


def sender_action_body(recipient_id: str, action: SenderAction) -> dict[str, Any]:
    if action not in SENDER_ACTIONS:
        raise ValueError(f"unknown sender action {action!r}")
    return {"recipient": {"id": recipient_id}, "sender_action": action}


def custom_body(recipient_id: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"recipient": {"id": recipient_id}, "message": message}


def passing_control(message: dict[str, Any], target_app_id: str) -> dict[str, Any]:
    """A reply that also hands the conversation to `target_app_id` (Conversation Routing:
    `thread_control` on the Send API), as the outbox stores it."""
    return {"message": message, "thread_control": {"app_id": target_app_id, "control_type": "pass"}}


def request_body(recipient_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The Send API body of a reply as the outbox stores it: a Graph `message`, or one
    wrapped with its `thread_control` (`passing_control`)."""
    if "thread_control" in stored:
        return {"recipient": {"id": recipient_id}, **stored}
    return custom_body(recipient_id, stored)


class _BearerAuth(AuthBase):
    """The token goes in the Authorization header only; as an auth object it also stops requests
    from replacing the header with credentials from ~/.netrc."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class GraphApiClient:
    """Sends messages to Instagram users; blocking (`*_blocking`) or from asyncio code."""

    def __init__(
        self,
        access_token: str,
        *,
        id_hash_key: str,
        base_url: str,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        max_workers: int = 16,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not access_token:
            raise ValueError("an access token is needed")
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// or http://")
        self.base_url = base_url.rstrip("/")
        self.retry_policy = retry_policy or RetryPolicy()
        self._messages_url = f"{self.base_url}/me/messages"
        self._take_control_url = f"{self.base_url}/me/take_thread_control"
        self._auth = _BearerAuth(access_token)
        self._id_hash_key = id_hash_key
        self._timeout = (connect_timeout, read_timeout)
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._rng = rng or random.Random()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="graph-api")
        self._session = requests.Session()
        # As many pooled connections as threads that may use them at once; no hidden retries.
        adapter = HTTPAdapter(pool_maxsize=max_workers, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> GraphApiClient:
        """A client configured by INSTAGRAM_ACCESS_TOKEN, INSTAGRAM_GRAPH_URL and ID_HASH_KEY."""
        if not settings.instagram_access_token:
            raise SettingsError("INSTAGRAM_ACCESS_TOKEN is not set")
        return cls(
            settings.instagram_access_token,
            id_hash_key=settings.id_hash_key,
            base_url=settings.graph_url,
            **options,
        )

    def take_control(self, recipient_id: str) -> Outcome:
        """Takes the conversation back from the app it was handed to (one attempt)."""
        return self.post_once({"recipient": {"id": recipient_id}}, self._take_control_url)

    def post_once(self, body: Body, url: str | None = None) -> Outcome:
        """One blocking HTTP attempt; network trouble is an `Unavailable`, never an exception."""
        try:
            response = self._session.post(
                url or self._messages_url,
                json=body,
                auth=self._auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return Unavailable(type(error).__name__)
        return classify_response(
            response.status_code, response.content, response.headers.get("Retry-After")
        )

    def deliver_blocking(self, body: Body) -> str | None:
        """Posts `body` until Graph accepts it, sleeping between attempts; the message id."""
        attempt = 1
        while True:
            outcome = self.post_once(body)
            if isinstance(outcome, Sent):
                return self._accepted(body, outcome, attempt)
            self._sleep(self._delay_before_retry(body, outcome, attempt))
            attempt += 1

    async def attempt(self, body: Body) -> Outcome:
        """One attempt in the client's threads; the caller decides about retries (the
        durable outbox keeps its own schedule, across restarts)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.post_once, body)

    async def deliver(self, body: Body) -> str | None:
        """Like `deliver_blocking`, but each attempt runs in the client's threads and the waits
        are `asyncio` sleeps: the event loop is never blocked and no thread sleeps."""
        loop = asyncio.get_running_loop()
        attempt = 1
        while True:
            outcome = await loop.run_in_executor(self._executor, self.post_once, body)
            if isinstance(outcome, Sent):
                return self._accepted(body, outcome, attempt)
            await self._async_sleep(self._delay_before_retry(body, outcome, attempt))
            attempt += 1

    async def send_text(
        self,
        recipient_id: str,
        text: str,
        quick_replies: Sequence[QuickReply] | None = None,
    ) -> list[str | None]:
        """Sends `text` in as many messages as it needs, in order; the message ids."""
        return [await self.deliver(body) for body in text_bodies(recipient_id, text, quick_replies)]

    def send_text_blocking(
        self,
        recipient_id: str,
        text: str,
        quick_replies: Sequence[QuickReply] | None = None,
    ) -> list[str | None]:
        bodies = text_bodies(recipient_id, text, quick_replies)
        return [self.deliver_blocking(body) for body in bodies]

    async def send_sender_action(self, recipient_id: str, action: SenderAction) -> None:
        await self.deliver(sender_action_body(recipient_id, action))

    async def send_custom(self, recipient_id: str, message: dict[str, Any]) -> str | None:
        """Sends a caller-built `message` object (attachments, templates) as it is."""
        return await self.deliver(custom_body(recipient_id, message))

    def close(self) -> None:
        """Waits for attempts in flight, then releases the threads and connections."""
        self._executor.shutdown(wait=True)
        self._session.close()

    def _accepted(self, body: Body, outcome: Sent, attempt: int) -> str | None:
        logger.debug(
            "graph send ok: message_id=%s attempt=%d recipient=%s",
            outcome.message_id,
            attempt,
            self._recipient_hash(body),
        )
        return outcome.message_id

    def _delay_before_retry(
        self, body: Body, outcome: Throttled | Unavailable | Rejected, attempt: int
    ) -> float:
        """Seconds to wait before the next attempt; raises when there must be none."""
        recipient = self._recipient_hash(body)
        if isinstance(outcome, Rejected):
            logger.warning(
                "graph send failed: %s attempt=%d recipient=%s, not retried",
                describe(outcome),
                attempt,
                recipient,
            )
            raise permanent_error(outcome)
        if attempt >= self.retry_policy.max_attempts:
            logger.error(
                "graph send gave up: %s attempt=%d recipient=%s",
                describe(outcome),
                attempt,
                recipient,
            )
            raise RetriesExhaustedError(outcome, attempt)
        delay = self.retry_policy.delay(attempt, outcome.retry_after, self._rng)
        logger.warning(
            "graph send failed: %s attempt=%d recipient=%s, retry in %.2f s",
            describe(outcome),
            attempt,
            recipient,
            delay,
        )
        return delay

    def _recipient_hash(self, body: Body) -> str:
        recipient = body.get("recipient")
        raw_id = recipient.get("id") if isinstance(recipient, Mapping) else None
        return hash_id(str(raw_id), self._id_hash_key)


def describe(outcome: Throttled | Unavailable | Rejected) -> str:
    """The outcome for a log line: kind and codes, nothing the patient wrote."""
    if isinstance(outcome, Throttled):
        return f"throttled code={outcome.code} retry_after={outcome.retry_after}"
    if isinstance(outcome, Unavailable):
        return f"unavailable reason={outcome.reason!r} retry_after={outcome.retry_after}"
    return (
        f"rejected code={outcome.code} subcode={outcome.subcode} http_status={outcome.http_status}"
    )
