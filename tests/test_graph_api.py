"""The Graph API client against the fake Graph API (loopback only): message building, the
exact bodies and headers sent, every answer mapped onto an outcome, and the outbox's sender
retrying by those outcomes alone."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from clinic.audit import hash_id
from clinic.db import create_database_engine
from clinic.delivery import Outbox
from clinic.settings import SettingsError, load_settings
from connectors.fake_graph import FakeGraphApi, FakeResponse
from connectors.graph_api import GraphApiClient
from connectors.graph_messages import passing_control, request_body, split_text, text_messages
from connectors.graph_outcomes import (
    Rejected,
    Sent,
    Throttled,
    Unavailable,
    classify_response,
)
from connectors.outbox import OutboxSender, backoff
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "TEST_TOKEN_not_a_real_one"
HASH_KEY = "test-hash-key"
RECIPIENT = "IG_TEST_1"
TEXT = "Secret test text 42"


class HighestRandom(random.Random):
    """Full jitter always at its ceiling, so the backoff is exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def fake() -> Iterator[FakeGraphApi]:
    with FakeGraphApi(access_token=TOKEN, id_hash_key=HASH_KEY) as server:
        yield server


@pytest.fixture
def client(fake: FakeGraphApi) -> Iterator[GraphApiClient]:
    client = GraphApiClient(TOKEN, base_url=fake.base_url)
    yield client
    client.close()


def text_message(text: str, recipient: str = RECIPIENT) -> dict[str, Any]:
    return {"recipient": {"id": recipient}, "message": {"text": text}}


def quick_reply(title: str, payload: str) -> dict[str, str]:
    return {"content_type": "text", "title": title, "payload": payload}


def send_text(client: GraphApiClient, text: str, replies=None) -> list:
    return [
        client.post_once(request_body(RECIPIENT, message))
        for message in text_messages(text, replies)
    ]


# --- bodies ---------------------------------------------------------------------------------

FIFTEEN_REPLIES = [(f"Option {n} with a long title", f'/choose{{"n": {n}}}') for n in range(15)]
THIRTEEN_TITLES = [f"Option {n} with a long" for n in range(10)] + [
    f"Option {n} with a lon" for n in range(10, 13)
]

BODY_CASES = [
    pytest.param("Hello", None, {"text": "Hello"}, id="text"),
    pytest.param(
        "Book?",
        [("Yes", "/affirm"), ("No", "/deny")],
        {
            "text": "Book?",
            "quick_replies": [quick_reply("Yes", "/affirm"), quick_reply("No", "/deny")],
        },
        id="quick-replies",
    ),
    pytest.param(
        "Which one?",
        FIFTEEN_REPLIES,
        {
            "text": "Which one?",
            "quick_replies": [
                quick_reply(title, f'/choose{{"n": {n}}}')
                for n, title in enumerate(THIRTEEN_TITLES)
            ],
        },
        id="quick-replies-13-max-titles-20-chars",
    ),
]


@pytest.mark.parametrize(("text", "replies", "message"), BODY_CASES)
def test_sends_the_exact_body(fake: FakeGraphApi, client: GraphApiClient, text, replies, message):
    assert send_text(client, text, replies) == [Sent("m_1")]
    assert [request.body for request in fake.sent] == [
        {"recipient": {"id": RECIPIENT}, "message": message}
    ]
    for request in fake.sent:
        assert request.path == "/v21.0/me/messages"  # no token in the URL
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Content-Type"] == "application/json"


def test_a_handoff_reply_carries_thread_control_and_typing_is_a_sender_action():
    stored = passing_control({"text": "A person will reply."}, "263902037430900")
    assert request_body(RECIPIENT, stored) == {
        "recipient": {"id": RECIPIENT},
        "message": {"text": "A person will reply."},
        "thread_control": {"app_id": "263902037430900", "control_type": "pass"},
    }


def test_blank_text_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError):
        text_messages("  \n ")


# --- splitting long text --------------------------------------------------------------------

SPLIT_CASES = [
    pytest.param("Short text.", 20, ["Short text."], id="fits"),
    pytest.param("  spaces kept when it fits ", 1000, ["  spaces kept when it fits "], id="as-is"),
    pytest.param("", 20, [], id="empty"),
    pytest.param(
        "Hello there. How are you today?", 20, ["Hello there.", "How are you today?"], id="sentence"
    ),
    pytest.param(
        "Is it 9:00? Or 9:30! Tell me.", 22, ["Is it 9:00? Or 9:30!", "Tell me."], id="last-end"
    ),
    pytest.param('He said "yes." Then left.', 16, ['He said "yes."', "Then left."], id="quote"),
    pytest.param("first line\nsecond line here", 22, ["first line", "second line here"], id="line"),
    pytest.param(
        "no sentence ends in this long text",
        16,
        ["no sentence ends", "in this long", "text"],
        id="words",
    ),
    pytest.param(
        "abcdefghijklmnopqrstuvwxyz", 10, ["abcdefghij", "klmnopqrst", "uvwxyz"], id="hard"
    ),
    pytest.param("é" * 600, 1000, ["é" * 500, "é" * 100], id="two-byte-chars"),
    pytest.param("😀" * 300, 1000, ["😀" * 250, "😀" * 50], id="emoji"),
    pytest.param("€€€€", 10, ["€€€", "€"], id="three-byte-not-cut"),
    pytest.param("👍🏽👍🏽", 13, ["👍🏽", "👍🏽"], id="skin-tone-kept"),
    pytest.param(
        "e\u0301" * 6, 7, ["e\u0301e\u0301", "e\u0301e\u0301", "e\u0301e\u0301"], id="accent"
    ),
]


@pytest.mark.parametrize(("text", "limit", "parts"), SPLIT_CASES)
def test_split_text(text: str, limit: int, parts: list[str]) -> None:
    assert split_text(text, limit) == parts


INVARIANT_TEXTS = [
    "Your visit is confirmed. " * 90,
    "🦷 " * 400 + "done.",
    "line one\n" * 200,
    "x" * 2500,
    "Dr. Test sees patients on Mondays!\n\n" * 40 + "ü" * 1500,
    "👨‍👩‍👧" * 100,
]


@pytest.mark.parametrize("text", INVARIANT_TEXTS)
@pytest.mark.parametrize("limit", [1000, 37])
def test_every_part_fits_and_nothing_is_lost(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(0 < len(part.encode()) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_long_text_goes_in_parts_with_quick_replies_on_the_last(
    fake: FakeGraphApi, client: GraphApiClient
) -> None:
    first = ("Your appointment options are below. " * 20).rstrip()  # 719 bytes
    second = "🦷" * 100 + " Pick one."  # 410 bytes: together past 1000
    replies = [("Mon 9:00", "/slot1"), ("Tue 10:30", "/slot2")]

    assert send_text(client, first + " \n" + second, replies) == [Sent("m_1"), Sent("m_2")]

    assert [r.body for r in fake.delivered] == [
        text_message(first),
        {
            "recipient": {"id": RECIPIENT},
            "message": {
                "text": second,
                "quick_replies": [
                    quick_reply("Mon 9:00", "/slot1"),
                    quick_reply("Tue 10:30", "/slot2"),
                ],
            },
        },
    ]


# --- mapping answers onto outcomes ----------------------------------------------------------


def graph_error(code: int, subcode: int | None = None) -> bytes:
    error: dict[str, Any] = {"message": "x", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return json.dumps({"error": error}).encode()


OK_BODY = b'{"recipient_id": "IG_TEST_1", "message_id": "m_9"}'

CLASSIFY_CASES = [
    pytest.param(200, OK_BODY, None, Sent("m_9"), id="sent"),
    pytest.param(200, b'{"recipient_id": "IG_TEST_1"}', None, Sent(None), id="sender-action"),
    pytest.param(200, b"<html>", None, Unavailable("unreadable body (HTTP 200)"), id="html-200"),
    pytest.param(429, b"", "7", Throttled(7.0, None), id="429"),
    pytest.param(429, graph_error(100), "1.5", Throttled(1.5, 100), id="429-any-code"),
    pytest.param(400, graph_error(4), None, Throttled(None, 4), id="app-rate-limit"),
    pytest.param(400, graph_error(613), "3", Throttled(3.0, 613), id="613"),
    pytest.param(500, graph_error(2), None, Throttled(None, 2), id="service-code-2"),
    pytest.param(500, b"", None, Unavailable("HTTP 500"), id="500"),
    pytest.param(503, b"busy", "5", Unavailable("HTTP 503", 5.0), id="503-retry-after"),
    pytest.param(502, b"", "5", Unavailable("HTTP 502"), id="502-ignores-retry-after"),
    pytest.param(503, b"", "Wed, 21 Oct 2026 07:28:00 GMT", Unavailable("HTTP 503"), id="date"),
    pytest.param(500, graph_error(100), None, Rejected(100, None, 500), id="500-permanent"),
    pytest.param(400, graph_error(10, 2534022), None, Rejected(10, 2534022, 400), id="window"),
    pytest.param(401, graph_error(190), None, Rejected(190, None, 401), id="token"),
    pytest.param(404, b"Not Found", None, Rejected(None, None, 404), id="404-not-graph"),
]


@pytest.mark.parametrize(("status", "content", "retry_after", "outcome"), CLASSIFY_CASES)
def test_classify_response(status: int, content: bytes, retry_after: str | None, outcome) -> None:
    assert classify_response(status, content, retry_after) == outcome


@pytest.mark.parametrize(
    ("code", "subcode", "reason"),
    [
        (10, 2534022, "outside_window"),
        (10, None, "outside_window"),
        (551, None, "recipient_unavailable"),
        (190, None, "invalid_token"),
        (100, None, "rejected"),
        (None, None, "rejected"),
    ],
)
def test_a_refusal_says_what_it_means(code, subcode, reason):
    assert Rejected(code, subcode, 400).reason == reason


def test_backoff_is_exponential_capped_and_retry_after_wins() -> None:
    highest = HighestRandom()
    assert [backoff(n, None, highest) for n in range(1, 9)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0
    ]  # fmt: skip
    rng = random.Random(3)
    assert all(0 <= backoff(3, None, rng) <= 2.0 for _ in range(200))
    assert backoff(1, 2.0, rng) == 2.0
    assert backoff(8, 0.0, rng) == 0.0
    assert backoff(1, 600.0, rng) == 60.0


def test_a_wrong_token_is_refused_by_the_fake(fake: FakeGraphApi) -> None:
    client = GraphApiClient("WRONG_TEST_TOKEN", base_url=fake.base_url)
    assert client.post_once(text_message(TEXT)).reason == "invalid_token"
    assert len(fake.sent) == 1


def test_read_timeout_and_connection_refused_are_unavailable(fake: FakeGraphApi) -> None:
    client = GraphApiClient(TOKEN, base_url=fake.base_url, read_timeout=0.2)
    fake.queue(FakeResponse(delay=1.0))
    assert client.post_once(text_message(TEXT)) == Unavailable("ReadTimeout")
    # The slow answer was a 200: Graph delivered that message although the client gave up.
    assert len(fake.delivered) == 1
    closed = GraphApiClient(TOKEN, base_url=f"http://127.0.0.1:{free_port()}/v21.0")
    assert closed.post_once(text_message(TEXT)) == Unavailable("ConnectionError")


# --- the outbox's sender: one retry policy ----------------------------------------------------


def test_the_sender_retries_by_outcome_and_logs_no_text_token_or_raw_recipient(
    fake: FakeGraphApi, client: GraphApiClient, sqlite_url, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = create_database_engine(sqlite_url)
    outbox = Outbox(engine, "replica-1", timedelta(seconds=15), HASH_KEY)
    sender = OutboxSender(outbox, client, timedelta(seconds=60), HASH_KEY)
    fake.queue(FakeResponse(500), FakeResponse.graph_error(4, headers={"Retry-After": "0"}))
    fake.queue(FakeResponse.graph_error(551))
    outbox.add(RECIPIENT, "mid.1", 0, {"text": TEXT})
    outbox.add(RECIPIENT, "mid.1", 1, {"text": "second"})  # waits behind the first

    outbox.release([row.id for row in outbox.listing()])
    deadline = time.monotonic() + 30
    while outbox.pending() and time.monotonic() < deadline:
        sender.poll()
        time.sleep(0.05)

    assert [r.body for r in fake.delivered] == [text_message("second")]
    (failed,) = outbox.listing(failed_only=True)
    assert failed.error == "rejected code=551 subcode=None http_status=400"
    logged = caplog.text
    assert hash_id(RECIPIENT, HASH_KEY) in logged
    assert "unavailable" in logged and "throttled code=4" in logged and "code=551" in logged
    for secret in (TEXT, TOKEN, RECIPIENT):
        assert secret not in logged
    engine.dispose()


# --- configuration ----------------------------------------------------------------------------


def test_from_settings(fake: FakeGraphApi) -> None:
    client = GraphApiClient.from_settings(
        load_settings({"INSTAGRAM_ACCESS_TOKEN": TOKEN, "INSTAGRAM_GRAPH_URL": fake.base_url})
    )
    try:
        assert client.post_once(text_message(TEXT)) == Sent("m_1")
    finally:
        client.close()
    with pytest.raises(SettingsError, match="INSTAGRAM_ACCESS_TOKEN"):
        GraphApiClient.from_settings(load_settings({"INSTAGRAM_GRAPH_URL": fake.base_url}))
    default = GraphApiClient.from_settings(load_settings({"INSTAGRAM_ACCESS_TOKEN": TOKEN}))
    default.close()
    assert default.base_url == "https://graph.instagram.com/v21.0"


# --- the fake for other processes -----------------------------------------------------------


def test_control_routes(fake: FakeGraphApi, client: GraphApiClient) -> None:
    control = f"http://127.0.0.1:{fake.port}/_fake"
    answers = [{"status": 500}, {"status": 400, "body": {"error": {"code": 551}}}]
    assert requests.post(f"{control}/queue", json=answers, timeout=5).json() == {"ok": True}

    assert client.post_once(text_message(TEXT)) == Unavailable("HTTP 500")
    assert client.post_once(text_message(TEXT)).reason == "recipient_unavailable"
    assert client.post_once(text_message(TEXT)) == Sent("m_1")

    sent = requests.get(f"{control}/sent", timeout=5).json()
    delivered = requests.get(f"{control}/delivered", timeout=5).json()
    assert [r["status"] for r in sent] == [500, 400, 200]
    assert [r["body"] for r in delivered] == [text_message(TEXT)]

    requests.post(f"{control}/down", json={"seconds": 30}, timeout=5)
    assert client.post_once(text_message(TEXT)) == Unavailable("HTTP 503")
    requests.post(f"{control}/reset", timeout=5)
    assert fake.sent == []
    assert client.post_once(text_message(TEXT)) == Sent("m_1")
    assert requests.post(f"{control}/down", json={}, timeout=5).status_code == 400


def test_wait_for(fake: FakeGraphApi, client: GraphApiClient) -> None:
    fake.queue(FakeResponse(delay=0.3))
    sending = threading.Thread(target=client.post_once, args=(text_message(TEXT),))
    sending.start()
    try:
        fake.wait_for(1, timeout=5)
        fake.wait_for(lambda: fake.messages_to(RECIPIENT) == [text_message(TEXT)], timeout=5)
    finally:
        sending.join()
    with pytest.raises(TimeoutError):
        fake.wait_for(2, timeout=0.1)


def test_runs_as_a_command() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.fake_graph", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url == f"http://127.0.0.1:{port}/v21.0"
        client = GraphApiClient(TOKEN, base_url=base_url)
        try:
            assert client.post_once(text_message(TEXT)) == Sent("m_1")
        finally:
            client.close()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "POST /v21.0/me/messages -> 200 recipient=" in stderr
    assert RECIPIENT not in stderr and TEXT not in stderr
