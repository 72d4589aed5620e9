"""The Graph API client against the fake Graph API: exact bodies, outcomes, retries, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from clinic.audit import hash_id
from clinic.settings import SettingsError, load_settings
from connectors.fake_graph import FakeGraphApi, FakeResponse
from connectors.graph_api import (
    GraphApiClient,
    InvalidTokenError,
    OutsideWindowError,
    PermanentSendError,
    RecipientUnavailableError,
    Rejected,
    RetriesExhaustedError,
    RetryPolicy,
    Sent,
    Throttled,
    Unavailable,
    classify_response,
    split_text,
)
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "TEST_TOKEN_not_a_real_one"
HASH_KEY = "test-hash-key"
RECIPIENT = "IG_TEST_1"
TEXT = "Secret test text 42"
MAX_ATTEMPTS = 4


class Sleeps:
    """Stands in for time.sleep and asyncio.sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def asynchronous(self, seconds: float) -> None:
        self.delays.append(seconds)


class HighestRandom(random.Random):
    """Full jitter always at its ceiling, so the backoff is exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def fake() -> Iterator[FakeGraphApi]:
    with FakeGraphApi(access_token=TOKEN, id_hash_key=HASH_KEY) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(fake: FakeGraphApi, sleeps: Sleeps) -> Iterator[Callable[..., GraphApiClient]]:
    """Clients on the fake with fast, recorded sleeps; any option can be overridden."""
    clients: list[GraphApiClient] = []

    def make(**options: Any) -> GraphApiClient:
        settings: dict[str, Any] = {
            "id_hash_key": HASH_KEY,
            "base_url": fake.base_url,
            "retry_policy": RetryPolicy(max_attempts=MAX_ATTEMPTS),
            "sleep": sleeps,
            "async_sleep": sleeps.asynchronous,
            "rng": random.Random(7),
        }
        settings.update(options)
        client = GraphApiClient(settings.pop("access_token", TOKEN), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., GraphApiClient]) -> GraphApiClient:
    return make_client()


Deliver = Callable[[GraphApiClient, dict[str, Any]], str | None]


@pytest.fixture(params=["blocking", "async"])
def deliver(request: pytest.FixtureRequest) -> Deliver:
    """Both ways of delivering a body; retry tests run once with each."""
    if request.param == "blocking":
        return lambda client, body: client.deliver_blocking(body)
    return lambda client, body: asyncio.run(client.deliver(body))


def text_message(text: str, recipient: str = RECIPIENT) -> dict[str, Any]:
    return {"recipient": {"id": recipient}, "message": {"text": text}}


def quick_reply(title: str, payload: str) -> dict[str, str]:
    return {"content_type": "text", "title": title, "payload": payload}


# --- bodies ---------------------------------------------------------------------------------

FIFTEEN_REPLIES = [(f"Option {n} with a long title", f'/choose{{"n": {n}}}') for n in range(15)]
THIRTEEN_TITLES = [f"Option {n} with a long" for n in range(10)] + [
    f"Option {n} with a lon" for n in range(10, 13)
]
BUTTON_TEMPLATE = {
    "attachment": {
        "type": "template",
        "payload": {"template_type": "button", "text": "Pick", "buttons": []},
    }
}

BODY_CASES = [
    pytest.param(
        lambda c: c.send_text(RECIPIENT, "Hello"),
        [text_message("Hello")],
        ["m_1"],
        id="text",
    ),
    pytest.param(
        lambda c: c.send_text(RECIPIENT, "Book?", [("Yes", "/affirm"), ("No", "/deny")]),
        [
            {
                "recipient": {"id": RECIPIENT},
                "message": {
                    "text": "Book?",
                    "quick_replies": [quick_reply("Yes", "/affirm"), quick_reply("No", "/deny")],
                },
            }
        ],
        ["m_1"],
        id="quick-replies",
    ),
    pytest.param(
        lambda c: c.send_text(RECIPIENT, "Which one?", FIFTEEN_REPLIES),
        [
            {
                "recipient": {"id": RECIPIENT},
                "message": {
                    "text": "Which one?",
                    "quick_replies": [
                        quick_reply(title, f'/choose{{"n": {n}}}')
                        for n, title in enumerate(THIRTEEN_TITLES)
                    ],
                },
            }
        ],
        ["m_1"],
        id="quick-replies-13-max-titles-20-chars",
    ),
    pytest.param(
        lambda c: c.send_sender_action(RECIPIENT, "typing_on"),
        [{"recipient": {"id": RECIPIENT}, "sender_action": "typing_on"}],
        None,
        id="typing-on",
    ),
    pytest.param(
        lambda c: c.send_sender_action(RECIPIENT, "mark_seen"),
        [{"recipient": {"id": RECIPIENT}, "sender_action": "mark_seen"}],
        None,
        id="mark-seen",
    ),
    pytest.param(
        lambda c: c.send_custom(RECIPIENT, BUTTON_TEMPLATE),
        [{"recipient": {"id": RECIPIENT}, "message": BUTTON_TEMPLATE}],
        "m_1",
        id="custom-json",
    ),
]


@pytest.mark.parametrize(("send", "bodies", "result"), BODY_CASES)
def test_sends_the_exact_body(
    fake: FakeGraphApi, client: GraphApiClient, send: Callable, bodies: list, result: Any
) -> None:
    assert asyncio.run(send(client)) == result
    assert [request.body for request in fake.sent] == bodies
    assert fake.messages_to(RECIPIENT) == bodies
    for request in fake.sent:
        assert request.path == "/v21.0/me/messages"  # no token in the URL
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Content-Type"] == "application/json"


def test_blocking_text_sends_the_same_body(fake: FakeGraphApi, client: GraphApiClient) -> None:
    assert client.send_text_blocking(RECIPIENT, "Hello", [("Yes", "/affirm")]) == ["m_1"]
    assert [r.body for r in fake.delivered] == [
        {
            "recipient": {"id": RECIPIENT},
            "message": {"text": "Hello", "quick_replies": [quick_reply("Yes", "/affirm")]},
        }
    ]


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_text(RECIPIENT, "  \n "),
        lambda c: c.send_sender_action(RECIPIENT, "dance"),
    ],
    ids=["blank-text", "unknown-sender-action"],
)
def test_refuses_what_graph_would_refuse(
    fake: FakeGraphApi, client: GraphApiClient, send: Callable
) -> None:
    with pytest.raises(ValueError):
        asyncio.run(send(client))
    assert fake.sent == []


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

    ids = asyncio.run(client.send_text(RECIPIENT, first + " \n" + second, replies))

    assert ids == ["m_1", "m_2"]
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


def test_backoff_is_exponential_capped_and_retry_after_wins() -> None:
    policy = RetryPolicy()
    highest = HighestRandom()
    assert [policy.delay(n, None, highest) for n in range(1, 9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        15.0,
        15.0,
        15.0,
    ]
    rng = random.Random(3)
    assert all(0 <= policy.delay(3, None, rng) <= 2.0 for _ in range(200))
    assert policy.delay(1, 2.0, rng) == 2.0
    assert policy.delay(8, 0.0, rng) == 0.0
    assert policy.delay(1, 600.0, rng) == 60.0


# --- retries --------------------------------------------------------------------------------


def test_retries_then_succeeds_once(
    fake: FakeGraphApi, client: GraphApiClient, sleeps: Sleeps, deliver: Deliver
) -> None:
    fake.queue(FakeResponse(500), FakeResponse(500))

    assert deliver(client, text_message(TEXT)) == "m_1"

    assert [r.status for r in fake.sent] == [500, 500, 200]
    assert [r.body for r in fake.delivered] == [text_message(TEXT)]
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5 and 0 <= sleeps.delays[1] <= 1.0


@pytest.mark.parametrize(
    ("answer", "delay"),
    [
        pytest.param(FakeResponse(429, headers={"Retry-After": "2"}), 2.0, id="429"),
        pytest.param(FakeResponse.graph_error(4, headers={"Retry-After": "2"}), 2.0, id="code-4"),
        pytest.param(FakeResponse(503, headers={"Retry-After": "3"}), 3.0, id="503"),
        pytest.param(FakeResponse(429, headers={"Retry-After": "3600"}), 60.0, id="capped"),
    ],
)
def test_retry_after_is_honoured(
    fake: FakeGraphApi,
    make_client: Callable[..., GraphApiClient],
    sleeps: Sleeps,
    deliver: Deliver,
    answer: FakeResponse,
    delay: float,
) -> None:
    client = make_client(rng=HighestRandom())  # the computed delay would be 0.5 s
    fake.queue(answer)

    assert deliver(client, text_message(TEXT)) == "m_1"

    assert sleeps.delays == [delay]
    assert len(fake.sent) == 2


def test_retry_after_is_waited_for_in_real_time(
    fake: FakeGraphApi, make_client: Callable[..., GraphApiClient]
) -> None:
    client = make_client(sleep=time.sleep, async_sleep=asyncio.sleep)
    fake.queue(FakeResponse(429, headers={"Retry-After": "1"}))

    asyncio.run(client.send_text(RECIPIENT, TEXT))

    first, second = fake.sent
    assert second.time - first.time >= 1.0


@pytest.mark.parametrize("code", [1, 2, 4, 17, 32, 613, 80002])
def test_throttling_codes_are_retried(
    fake: FakeGraphApi, client: GraphApiClient, deliver: Deliver, code: int
) -> None:
    fake.queue(FakeResponse.graph_error(code), FakeResponse.graph_error(code, status=403))

    assert deliver(client, text_message(TEXT)) == "m_1"
    assert [r.status for r in fake.sent] == [400, 403, 200]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(FakeResponse(500), id="500"),
        pytest.param(FakeResponse(429), id="429"),
        pytest.param(FakeResponse(502, "<html>Bad gateway</html>"), id="html-502"),
    ],
)
def test_gives_up_after_max_attempts(
    fake: FakeGraphApi, client: GraphApiClient, sleeps: Sleeps, deliver: Deliver, answer
) -> None:
    fake.queue(*[answer] * (MAX_ATTEMPTS + 1))

    with pytest.raises(RetriesExhaustedError) as raised:
        deliver(client, text_message(TEXT))

    assert raised.value.attempts == MAX_ATTEMPTS
    assert isinstance(raised.value.last_outcome, (Throttled, Unavailable))
    assert len(fake.sent) == MAX_ATTEMPTS
    assert fake.delivered == []
    assert len(sleeps.delays) == MAX_ATTEMPTS - 1


def test_gives_up_while_graph_is_down(
    fake: FakeGraphApi, client: GraphApiClient, deliver: Deliver
) -> None:
    fake.down_for(30)

    with pytest.raises(RetriesExhaustedError) as raised:
        deliver(client, text_message(TEXT))

    assert raised.value.last_outcome == Unavailable("HTTP 503")
    assert [r.status for r in fake.sent] == [503] * MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("answer", "error_type", "code", "subcode"),
    [
        pytest.param(
            FakeResponse.graph_error(10, 2534022), OutsideWindowError, 10, 2534022, id="window"
        ),
        pytest.param(FakeResponse.graph_error(10), OutsideWindowError, 10, None, id="10-alone"),
        pytest.param(
            FakeResponse.graph_error(10, 2018278, status=403),
            PermanentSendError,
            10,
            2018278,
            id="10-other",
        ),
        pytest.param(FakeResponse.graph_error(551), RecipientUnavailableError, 551, None, id="551"),
        pytest.param(FakeResponse.graph_error(100), PermanentSendError, 100, None, id="100"),
        pytest.param(
            FakeResponse.graph_error(190, status=401), InvalidTokenError, 190, None, id="190"
        ),
        pytest.param(FakeResponse(404, "Not Found"), PermanentSendError, None, None, id="404"),
    ],
)
def test_permanent_errors_are_raised_after_one_attempt(
    fake: FakeGraphApi,
    client: GraphApiClient,
    sleeps: Sleeps,
    deliver: Deliver,
    answer: FakeResponse,
    error_type: type[PermanentSendError],
    code: int | None,
    subcode: int | None,
) -> None:
    fake.queue(answer)

    with pytest.raises(PermanentSendError) as raised:
        deliver(client, text_message(TEXT))

    assert type(raised.value) is error_type
    assert (raised.value.code, raised.value.subcode) == (code, subcode)
    assert len(fake.sent) == 1
    assert sleeps.delays == []


def test_a_wrong_token_is_refused_by_the_fake(
    fake: FakeGraphApi, make_client: Callable[..., GraphApiClient]
) -> None:
    client = make_client(access_token="WRONG_TEST_TOKEN")

    with pytest.raises(InvalidTokenError):
        asyncio.run(client.send_text(RECIPIENT, TEXT))
    assert len(fake.sent) == 1


def test_read_timeout_is_unavailable_and_retried(
    fake: FakeGraphApi, make_client: Callable[..., GraphApiClient], deliver: Deliver
) -> None:
    client = make_client(read_timeout=0.2)
    fake.queue(FakeResponse(delay=1.0))

    assert client.post_once(text_message(TEXT)) == Unavailable("ReadTimeout")
    fake.queue(FakeResponse(delay=1.0))
    assert deliver(client, text_message(TEXT)) == "m_3"

    assert len(fake.sent) == 3
    # The slow answers were 200s: Graph delivered those messages although the client gave up.
    assert len(fake.delivered) == 3


def test_connection_refused_is_unavailable(
    make_client: Callable[..., GraphApiClient], deliver: Deliver
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}/v21.0")

    assert client.post_once(text_message(TEXT)) == Unavailable("ConnectionError")
    with pytest.raises(RetriesExhaustedError) as raised:
        deliver(client, text_message(TEXT))
    assert raised.value.last_outcome == Unavailable("ConnectionError")


# --- the event loop -------------------------------------------------------------------------


def test_a_slow_send_does_not_block_the_event_loop(
    fake: FakeGraphApi, client: GraphApiClient
) -> None:
    fake.queue(FakeResponse(delay=0.6), FakeResponse(delay=0.6))

    async def scenario() -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        await asyncio.gather(client.send_text(RECIPIENT, TEXT), client.send_text("IG_TEST_2", TEXT))
        elapsed = time.monotonic() - started
        ticking.cancel()
        return ticks, elapsed

    ticks, elapsed = asyncio.run(scenario())

    assert ticks >= 10  # about 30 in 0.6 s; none if the loop had been blocked
    assert elapsed < 1.1  # the two slow sends ran side by side
    assert len(fake.delivered) == 2


# --- configuration and logs -----------------------------------------------------------------


def test_from_settings(fake: FakeGraphApi) -> None:
    client = GraphApiClient.from_settings(
        load_settings({"INSTAGRAM_ACCESS_TOKEN": TOKEN, "INSTAGRAM_GRAPH_URL": fake.base_url})
    )
    try:
        assert client.send_text_blocking(RECIPIENT, TEXT) == ["m_1"]
    finally:
        client.close()
    with pytest.raises(SettingsError, match="INSTAGRAM_ACCESS_TOKEN"):
        GraphApiClient.from_settings(load_settings({"INSTAGRAM_GRAPH_URL": fake.base_url}))
    default = GraphApiClient.from_settings(load_settings({"INSTAGRAM_ACCESS_TOKEN": TOKEN}))
    default.close()
    assert default.base_url == "https://graph.instagram.com/v21.0"


def test_logs_hold_no_text_token_or_raw_recipient(
    fake: FakeGraphApi,
    client: GraphApiClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.queue(
        FakeResponse(500),
        FakeResponse.graph_error(4, headers={"Retry-After": "0"}),
        FakeResponse(),
        FakeResponse.graph_error(551),
        *[FakeResponse(503)] * MAX_ATTEMPTS,
    )

    asyncio.run(client.send_text(RECIPIENT, TEXT))
    with pytest.raises(RecipientUnavailableError):
        client.send_text_blocking(RECIPIENT, TEXT)
    with pytest.raises(RetriesExhaustedError):
        asyncio.run(client.send_text(RECIPIENT, TEXT))

    logged = caplog.text
    assert hash_id(RECIPIENT, HASH_KEY) in logged
    assert "throttled code=4" in logged and "code=551" in logged and "gave up" in logged
    for secret in (TEXT, TOKEN, RECIPIENT):
        assert secret not in logged


# --- the fake for other processes -----------------------------------------------------------


def test_control_routes(fake: FakeGraphApi, client: GraphApiClient) -> None:
    control = f"http://127.0.0.1:{fake.port}/_fake"
    answers = [{"status": 500}, {"status": 400, "body": {"error": {"code": 551}}}]
    assert requests.post(f"{control}/queue", json=answers, timeout=5).json() == {"ok": True}

    with pytest.raises(RecipientUnavailableError):
        client.send_text_blocking(RECIPIENT, TEXT)
    client.send_text_blocking(RECIPIENT, TEXT)

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
    sending = threading.Thread(target=client.send_text_blocking, args=(RECIPIENT, TEXT))
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
        client = GraphApiClient(TOKEN, id_hash_key=HASH_KEY, base_url=base_url)
        try:
            assert client.send_text_blocking(RECIPIENT, TEXT) == ["m_1"]
        finally:
            client.close()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "POST /v21.0/me/messages -> 200 recipient=" in stderr
    assert RECIPIENT not in stderr and TEXT not in stderr
