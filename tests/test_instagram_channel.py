"""The Instagram channel against recorded Meta payload shapes and the fake Graph API."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.core.channels.channel import UserMessage

from clinic.settings import Settings
from connectors.dedupe import MemoryDedupe, RedisDedupe
from connectors.fake_graph import FakeGraphApi, FakeResponse
from connectors.instagram import InstagramInput
from connectors.webhook import signature
from tests.redis_support import REDIS_URL

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "instagram"
SECRET = "test-app-secret"
VERIFY = "test-verify-token"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


class Recorder:
    """Stands in for Rasa: records each user message and answers it."""

    def __init__(self, work_seconds: float = 0.0):
        self.messages: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._work_seconds = work_seconds

    async def __call__(self, message: UserMessage) -> None:
        if self._work_seconds:
            _busy(self._work_seconds)  # like model inference: holds the loop and the CPU
        with self._lock:
            self.messages.append((message.sender_id, message.text, message.message_id))
        await message.output_channel.send_text_with_buttons(
            message.sender_id, f"you said {message.text}", [{"title": "OK", "payload": "/affirm"}]
        )


def _busy(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    with FakeGraphApi(access_token="test-access-token") as fake:
        yield fake


def make_channel(graph: FakeGraphApi, recorder: Recorder, dedupe=None) -> InstagramInput:
    channel = InstagramInput(
        verify_token=VERIFY,
        app_secret=SECRET,
        access_token="test-access-token",
        settings=Settings(graph_url=graph.base_url, typing_indicator=False),
    )
    channel._note_message = _no_database  # the channel tests don't need patients
    channel.start(recorder, app=None, dedupe=dedupe or MemoryDedupe())
    return channel


async def _no_database(sender_id: str, timestamp_ms: int) -> None:
    return None


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def channel(graph, recorder) -> Iterator[InstagramInput]:
    built = make_channel(graph, recorder)
    yield built
    settle(built)
    built.stop()


def deliver(channel: InstagramInput, body: bytes, header: str | None = "sign") -> int:
    if header == "sign":
        header = signature(body, SECRET)
    return asyncio.run(channel.receive(body, header)).status


def settle(channel: InstagramInput) -> None:
    assert channel.wait_idle(30)


# --- verification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "body"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"},
         200, b"1158201444"),
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "x"}, 403, None),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "x"}, 403, None),
        ({"hub.challenge": "x"}, 403, None),
    ],
    ids=["ok", "bad-token", "bad-mode", "nothing"],
)  # fmt: skip
def test_webhook_verification(channel, args, status, body):
    answer = channel.verify(args)
    assert answer.status == status
    if body is not None:
        assert answer.body == body


# --- signatures and bad input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("sign", 200),
        (None, 403),
        ("sha256=" + "0" * 64, 403),
        ("sha1=0123456789abcdef0123456789abcdef01234567", 403),
        ("", 403),
    ],
    ids=["ok", "missing", "wrong", "sha1-only", "empty"],
)
def test_only_a_correct_sha256_signature_is_processed(channel, recorder, header, status):
    assert deliver(channel, fixture("text"), header) == status
    settle(channel)
    assert len(recorder.messages) == (1 if status == 200 else 0)


def test_unicode_is_verified_on_the_bytes_meta_signed(channel, recorder):
    payload = json.loads(fixture("text"))
    payload["entry"][0]["messaging"][0]["message"]["text"] = "PÁTIENT_TËST 😊 ¿mañana?"
    body = json.dumps(payload).encode()  # Meta escapes non-ASCII: \u00c1, \ud83d\ude0a
    assert b"\\u00c1" in body
    assert deliver(channel, body) == 200
    settle(channel)
    assert recorder.messages[0][1] == "PÁTIENT_TËST 😊 ¿mañana?"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"object": "page", "entry": []}', 400),
        (b'{"object": "instagram"}', 400),
        (b"[]", 400),
        (b'{"object": "instagram", "entry": []}' + b" " * (1024 * 1024), 413),
    ],
    ids=["broken-json", "not-instagram", "no-entries", "not-an-object", "oversize"],
)
def test_bad_bodies_get_a_clear_status_and_nothing_is_processed(channel, recorder, body, status):
    assert deliver(channel, body) == status
    settle(channel)
    assert recorder.messages == []


# --- what becomes a message -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("text", ("IG_TEST_1", "hi", "mid.text.1")),
        ("quick_reply", ("IG_TEST_1", "2026-02-05T14:00:00-05:00", "mid.qr.1")),
        ("postback", ("IG_TEST_1", "/book_appointment", "mid.postback.1")),
        ("dashboard_test", ("12334", "random_text", "random_mid")),
    ],
)
def test_messages_quick_replies_postbacks_and_the_dashboard_test(channel, recorder, name, expected):
    assert deliver(channel, fixture(name)) == 200
    settle(channel)
    assert recorder.messages == [expected]


@pytest.mark.parametrize("name", ["echo", "read", "reaction", "edit", "deleted", "unsupported"])
def test_echoes_reads_reactions_edits_deletions_are_ignored(channel, recorder, graph, name):
    assert deliver(channel, fixture(name)) == 200
    settle(channel)
    assert recorder.messages == []
    assert graph.sent == []


def test_an_attachment_gets_a_text_only_note_without_reaching_the_bot(channel, recorder, graph):
    assert deliver(channel, fixture("attachment")) == 200
    settle(channel)
    graph.wait_for(1)
    assert recorder.messages == []
    assert graph.messages_to("IG_TEST_1") == [
        {
            "recipient": {"id": "IG_TEST_1"},
            "message": {"text": "I can only read text messages for now."},
        }
    ]


def test_a_batch_of_three_entries_is_handled_whole_and_in_order_per_sender(
    channel, recorder, graph
):
    assert deliver(channel, fixture("batched")) == 200
    settle(channel)
    assert len(recorder.messages) == 6
    for sender, texts in [("IG_TEST_A", ["a1", "a2", "a3"]), ("IG_TEST_B", ["b1", "b2", "b3"])]:
        assert [text for who, text, _ in recorder.messages if who == sender] == texts
    graph.wait_for(6)
    replies = [m["message"]["text"] for m in graph.messages_to("IG_TEST_A")]
    assert replies == ["you said a1", "you said a2", "you said a3"]


def test_a_redelivered_message_is_handled_once(channel, recorder, graph):
    for _ in range(3):
        assert deliver(channel, fixture("text")) == 200
    settle(channel)
    graph.wait_for(1)
    time.sleep(0.2)
    assert len(recorder.messages) == 1
    assert len(graph.delivered) == 1


def test_replies_with_buttons_are_sent_as_quick_replies(channel, graph):
    deliver(channel, fixture("text"))
    graph.wait_for(1)
    assert graph.messages_to("IG_TEST_1") == [
        {
            "recipient": {"id": "IG_TEST_1"},
            "message": {
                "text": "you said hi",
                "quick_replies": [{"content_type": "text", "title": "OK", "payload": "/affirm"}],
            },
        }
    ]


def test_replies_survive_graph_errors_in_order_and_once(channel, graph):
    graph.queue(FakeResponse(500), FakeResponse(429, headers={"Retry-After": "0"}))
    deliver(channel, fixture("batched"))
    settle(channel)
    graph.wait_for(6, timeout=30)
    time.sleep(0.3)
    texts = [m["message"]["text"] for m in graph.messages_to("IG_TEST_B")]
    assert texts == ["you said b1", "you said b2", "you said b3"]
    assert len(graph.delivered) == 6


def test_the_ack_does_not_wait_for_a_busy_dialogue(graph):
    slow = Recorder(work_seconds=0.5)
    channel = make_channel(graph, slow)
    try:
        timings = []
        for number in range(5):
            payload = json.loads(fixture("text"))
            payload["entry"][0]["messaging"][0]["message"]["mid"] = f"mid.slow.{number}"
            body = json.dumps(payload).encode()
            started = time.perf_counter()
            assert deliver(channel, body) == 200
            timings.append(time.perf_counter() - started)
        assert max(timings) < 0.1, timings  # five turns of 0.5 s are still queued
        settle(channel)
        assert len(slow.messages) == 5
    finally:
        channel.stop()


def test_two_servers_sharing_redis_process_a_redelivery_once(graph, recorder):
    prefix = f"test:{uuid.uuid4().hex}:"
    first = make_channel(graph, recorder, RedisDedupe(REDIS_URL, prefix=prefix))
    second = make_channel(graph, recorder, RedisDedupe(REDIS_URL, prefix=prefix))
    try:
        body = fixture("text")

        async def both() -> list[int]:
            answers = await asyncio.gather(
                first.receive(body, signature(body, SECRET)),
                second.receive(body, signature(body, SECRET)),
            )
            return [a.status for a in answers]

        assert asyncio.run(both()) == [200, 200]
        settle(first), settle(second)
        assert len(recorder.messages) == 1
    finally:
        for channel in (first, second):
            channel.stop()


def test_missing_secrets_are_named_clearly(monkeypatch):
    monkeypatch.delenv("INSTAGRAM_APP_SECRET", raising=False)
    monkeypatch.setenv("INSTAGRAM_VERIFY_TOKEN", "x")
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "y")
    with pytest.raises(ValueError, match="INSTAGRAM_APP_SECRET"):
        InstagramInput.from_credentials(
            {
                "verify_token": "${INSTAGRAM_VERIFY_TOKEN}",
                "app_secret": "${INSTAGRAM_APP_SECRET}",
                "access_token": "${INSTAGRAM_ACCESS_TOKEN}",
            }
        )
