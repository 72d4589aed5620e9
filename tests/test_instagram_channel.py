"""The Instagram channel against recorded Meta payload shapes, a real database (the durable
inbox and outbox) and the fake Graph API."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from sqlalchemy import func, select

from clinic.db import create_database_engine, transaction
from clinic.delivery import Inbox, NewMessage
from clinic.errors import DatabaseUnavailableError
from clinic.models import InboxMessage, OutboxMessage
from clinic.settings import Settings
from connectors.fake_graph import FakeGraphApi, FakeResponse
from connectors.instagram import InstagramInput, answers_to
from connectors.simulate import delivery
from connectors.webhook import (
    ControlReturned,
    Ignored,
    StaffWrote,
    parse_delivery,
    signature,
)
from entrypoints.cli import main as clinic_cli
from tests.conftest import UNREACHABLE_DATABASE_URL
from tests.helpers import ChannelOnLoop, StatementLog, wait_until

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "instagram"
SECRET = "test-app-secret"
VERIFY = "test-verify-token"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


class Recorder:
    """Stands in for Rasa: records each user message and answers it."""

    def __init__(self, work_seconds: float = 0.0, gate: threading.Event | None = None):
        self.messages: list[tuple[str, str, str]] = []
        self._gate = gate  # when given, each turn waits until it is set
        self._lock = threading.Lock()
        self._work_seconds = work_seconds
        self.busy_senders: set[str] = set()
        self.overlaps = 0  # two turns of one sender at once

    async def __call__(self, message: UserMessage) -> None:
        with self._lock:
            self.overlaps += message.sender_id in self.busy_senders
            self.busy_senders.add(message.sender_id)
        try:
            if self._work_seconds:
                await asyncio.sleep(self._work_seconds)
            while self._gate is not None and not self._gate.is_set():
                await asyncio.sleep(0.01)
            with self._lock:
                self.messages.append((message.sender_id, message.text, message.message_id))
            await message.output_channel.send_text_with_buttons(
                message.sender_id,
                f"you said {message.text}",
                [{"title": "OK", "payload": "/affirm"}],
            )
        finally:
            with self._lock:
                self.busy_senders.discard(message.sender_id)


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    with FakeGraphApi(access_token="test-access-token") as fake:
        yield fake


def make_channel(
    graph: FakeGraphApi, recorder, database_url: str, answers_if_handled=None, **settings
) -> ChannelOnLoop:
    channel = InstagramInput(
        verify_token=VERIFY,
        app_secret=SECRET,
        access_token="test-access-token",
        settings=Settings(
            database_url=database_url,
            graph_url=graph.base_url,
            typing_indicator=False,
            **{"replica_id": "test-replica", **settings},
        ),
    )
    return ChannelOnLoop(channel, recorder, answers_if_handled)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def channel(graph, recorder, sqlite_url) -> Iterator[ChannelOnLoop]:
    built = make_channel(graph, recorder, sqlite_url)
    yield built
    settle(built)
    built.stop()


def deliver(channel: ChannelOnLoop, body: bytes, header: str | None = "sign") -> int:
    if header == "sign":
        header = signature(body, SECRET)
    return asyncio.run(channel.receive(body, header)).status


def settle(channel: ChannelOnLoop) -> None:
    assert channel.wait_idle(60)


def rows(database_url: str, model, *where) -> int:
    engine = create_database_engine(database_url)
    try:
        with transaction(engine) as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        engine.dispose()


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


def test_the_ack_does_not_wait_for_a_busy_dialogue(graph, sqlite_url):
    gate = threading.Event()
    held = Recorder(gate=gate)
    channel = make_channel(graph, held, sqlite_url)
    try:
        for number in range(5):
            payload = json.loads(fixture("text"))
            payload["entry"][0]["messaging"][0]["message"]["mid"] = f"mid.held.{number}"
            assert deliver(channel, json.dumps(payload).encode()) == 200
        # All five were acknowledged while no turn could finish.
        assert held.messages == []
        gate.set()
        settle(channel)
        assert len(held.messages) == 5
    finally:
        gate.set()
        channel.stop()


def test_two_servers_sharing_a_database_process_a_redelivery_once(graph, recorder, postgres_url):
    first = make_channel(graph, recorder, postgres_url, replica_id="replica-1")
    second = make_channel(graph, recorder, postgres_url, replica_id="replica-2")
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
        assert len(graph.delivered) == 1
    finally:
        for channel in (first, second):
            channel.stop()


def test_two_servers_take_one_patients_messages_in_order_one_at_a_time(graph, postgres_url):
    slow = Recorder(work_seconds=0.05)
    servers = [make_channel(graph, slow, postgres_url, replica_id=f"replica-{n}") for n in (1, 2)]
    try:
        for number in range(12):
            payload = json.loads(fixture("text"))
            item = payload["entry"][0]["messaging"][0]
            item["message"] = {"mid": f"mid.order.{number}", "text": f"m{number}"}
            item["timestamp"] = 1770037200000 + number
            assert deliver(servers[number % 2], json.dumps(payload).encode()) == 200
        for server in servers:
            settle(server)
        assert [text for _, text, _ in slow.messages] == [f"m{n}" for n in range(12)]
        assert slow.overlaps == 0
        replies = [m["message"]["text"] for m in graph.messages_to("IG_TEST_1")]
        assert replies == [f"you said m{n}" for n in range(12)]
    finally:
        for server in servers:
            server.stop()


def one_message(sender: str, number: int) -> bytes:
    payload = json.loads(fixture("text"))
    item = payload["entry"][0]["messaging"][0]
    item["sender"] = {"id": sender}
    item["message"] = {"mid": f"mid.{sender}.{number}", "text": f"m{number}"}
    item["timestamp"] = 1770037200000 + number
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("senders", "max_concurrency"),
    [(["IG_TEST_1", "IG_TEST_1"], 8), (["IG_TEST_1", "IG_TEST_2"], 1)],
    ids=["the-same-patient-again", "another-patient-past-the-bound"],
)
def test_a_message_left_waiting_is_taken_up_when_a_turn_ends_not_at_the_poll(
    graph, sqlite_url, monkeypatch, senders, max_concurrency
):
    monkeypatch.setattr("connectors.channel_core.POLL_SECONDS", 3600.0)
    slow = Recorder(work_seconds=0.3)
    channel = make_channel(graph, slow, sqlite_url, max_concurrency=max_concurrency)
    try:
        started = time.monotonic()
        for number, sender in enumerate(senders):
            assert deliver(channel, one_message(sender, number)) == 200
        assert wait_until(lambda: len(slow.messages) == 2, 30)
        assert time.monotonic() - started < 10  # far from the hour-long poll
        assert [text for _, text, _ in slow.messages] == ["m0", "m1"]
    finally:
        channel.stop()


def test_a_reply_that_cannot_be_stored_fails_the_turn_which_is_run_again(
    graph, recorder, sqlite_url, monkeypatch
):
    channel = make_channel(graph, recorder, sqlite_url)
    store = channel.outbox.store
    failures = iter([DatabaseUnavailableError("the database is unreachable")])

    def store_once_failing(*args):
        for failure in failures:
            raise failure
        return store(*args)

    monkeypatch.setattr(channel.outbox, "store", store_once_failing)
    try:
        assert deliver(channel, fixture("text")) == 200
        graph.wait_for(1, timeout=30)  # the turn is tried again 2 s later
        settle(channel)
        assert [text for _, text, _ in recorder.messages] == ["hi", "hi"]
        assert [m["message"]["text"] for m in graph.messages_to("IG_TEST_1")] == ["you said hi"]
        assert rows(sqlite_url, InboxMessage, InboxMessage.status == "done") == 1
    finally:
        channel.stop()


class HangsOnce(Recorder):
    """The first turn never ends (an action server that does not answer); later ones do."""

    def __init__(self) -> None:
        super().__init__()
        self.cut_short = 0

    async def __call__(self, message: UserMessage) -> None:
        if self.cut_short == 0:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cut_short += 1
                raise
        await super().__call__(message)


def test_a_turn_that_hangs_is_cut_short_and_tried_again(graph, sqlite_url):
    hangs = HangsOnce()
    channel = make_channel(graph, hangs, sqlite_url, turn_deadline_seconds=1)
    try:
        assert deliver(channel, fixture("text")) == 200
        graph.wait_for(1, timeout=30)  # deadline 1 s, then tried again 2 s later
        settle(channel)
        assert hangs.cut_short == 1
        assert [text for _, text, _ in hangs.messages] == ["hi"]
        assert [m["message"]["text"] for m in graph.messages_to("IG_TEST_1")] == ["you said hi"]
        assert rows(sqlite_url, InboxMessage, InboxMessage.status == "done") == 1
    finally:
        channel.stop()


def test_no_claim_is_run_while_every_message_is_claimed_at_intake(
    graph, recorder, sqlite_url, monkeypatch
):
    monkeypatch.setattr("connectors.channel_core.POLL_SECONDS", 3600.0)
    channel = make_channel(graph, recorder, sqlite_url)
    try:
        assert deliver(channel, one_message("IG_TEST_1", 0)) == 200
        settle(channel)
        claims = []
        claim = channel.inbox.claim
        monkeypatch.setattr(channel.inbox, "claim", lambda *a: claims.append(a) or claim(*a))
        for number in range(1, 6):
            assert deliver(channel, one_message("IG_TEST_1", number)) == 200
            settle(channel)
        assert len(recorder.messages) == 6
        assert claims == []
    finally:
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


# --- poison-proof intake ----------------------------------------------------------------

VALID = {
    "sender": {"id": "IG_TEST_OK"},
    "recipient": {"id": "17841400000000001"},
    "timestamp": 1770037200000,
    "message": {"mid": "mid.valid.1", "text": "hi"},
}


def delivery_with(*items, messaging_of_first_entry=None) -> bytes:
    entries = [{"id": "17841400000000001", "time": 1770037200000, "messaging": list(items)}]
    if messaging_of_first_entry is not None:
        entries.insert(0, {"id": "1", "time": 1, "messaging": messaging_of_first_entry})
    return json.dumps({"object": "instagram", "entry": entries}).encode()


def with_message(**message) -> dict:
    return {**VALID, "message": {"mid": "mid.poison.1", **message}}


POISON_ITEMS = {
    "sender-is-a-string": {**VALID, "sender": "abc", "message": {"mid": "m.p", "text": "x"}},
    "sender-id-is-a-list": {**VALID, "sender": {"id": [1]}, "message": {"mid": "m.p", "text": "x"}},
    "sender-id-too-long": {**VALID, "sender": {"id": "9" * 65}},
    "message-is-a-list": {**VALID, "message": ["hi"]},
    "text-is-a-number": with_message(text=5),
    "mid-is-a-number": {**VALID, "message": {"mid": 5, "text": "x"}},
    "mid-too-long": {**VALID, "message": {"mid": "m" * 300, "text": "x"}},
    "quick-reply-payload-is-a-number": with_message(text="2", quick_reply={"payload": 5}),
    "quick-reply-payload-is-an-object": with_message(text="2", quick_reply={"payload": {"a": 1}}),
    "quick-reply-is-a-string": with_message(text="2", quick_reply="2"),
    "postback-payload-is-a-list": {**VALID, "message": None, "postback": {"payload": [1]}},
    "item-is-a-number": 7,
}  # fmt: skip


@pytest.mark.parametrize("poison", POISON_ITEMS.values(), ids=POISON_ITEMS.keys())
def test_a_malformed_item_is_ignored_and_the_rest_of_the_delivery_is_processed(
    channel, recorder, poison
):
    assert deliver(channel, delivery_with(poison, VALID)) == 200
    settle(channel)
    assert recorder.messages == [("IG_TEST_OK", "hi", "mid.valid.1")]


@pytest.mark.parametrize("messaging", [5, "x", {"a": 1}], ids=["number", "string", "object"])
def test_an_entry_whose_messaging_is_not_a_list_spoils_nothing_else(channel, recorder, messaging):
    assert deliver(channel, delivery_with(VALID, messaging_of_first_entry=messaging)) == 200
    settle(channel)
    assert recorder.messages == [("IG_TEST_OK", "hi", "mid.valid.1")]


POISON_TIMES = {
    "year-33658": 10**15,
    "far-future": 10**30,
    "negative": -1770037200000,
    "non-numeric": "soon",
    "a-list": [1770037200000],
}


@pytest.mark.parametrize("poison", POISON_TIMES.values(), ids=POISON_TIMES.keys())
def test_an_implausible_timestamp_is_replaced_and_spoils_nothing(
    channel, recorder, sqlite_url, poison
):
    """An item's time (or its entry's) out of range is replaced by the time it arrived."""
    before_ms = int(time.time() * 1000)  # whole milliseconds, as the channel keeps them
    late = {**VALID, "sender": {"id": "IG_TEST_LATE"}, "timestamp": poison}
    late["message"] = {"mid": "mid.late.1", "text": "hello"}
    body = json.loads(delivery_with(late, VALID))
    body["entry"][0]["time"] = poison
    assert deliver(channel, json.dumps(body).encode()) == 200
    settle(channel)
    assert sorted(recorder.messages) == [
        ("IG_TEST_LATE", "hello", "mid.late.1"),
        ("IG_TEST_OK", "hi", "mid.valid.1"),
    ]
    engine = create_database_engine(sqlite_url)
    try:
        with transaction(engine) as session:
            sent = dict(session.execute(select(InboxMessage.mid, InboxMessage.sent_at_ms)).all())
    finally:
        engine.dispose()
    assert sent["mid.valid.1"] == VALID["timestamp"]
    assert before_ms <= sent["mid.late.1"] <= time.time() * 1000


def test_entries_for_another_account_are_ignored(graph, recorder, sqlite_url, caplog):
    channel = make_channel(graph, recorder, sqlite_url, instagram_account_id="17841400000000001")
    other = {**VALID, "sender": {"id": "IG_TEST_OTHER"}, "message": {"mid": "m.o", "text": "x"}}
    try:
        with caplog.at_level(logging.INFO, logger="connectors"):
            assert deliver(channel, delivery_with(VALID, messaging_of_first_entry=[other])) == 200
        settle(channel)
    finally:
        channel.stop()
    assert recorder.messages == [("IG_TEST_OK", "hi", "mid.valid.1")]
    assert [m.getMessage() for m in caplog.records if "ignored" in m.getMessage()] == [
        "instagram item ignored: other_account"
    ]
    assert graph.messages_to("IG_TEST_OTHER") == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"object": "instagram", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
        (b'{"object": "instagram", "entry": []}' + b" " * (2 * 1024 * 1024), 413),
    ],
    ids=["nested-100k-deep", "2-MB"],
)
def test_deep_or_huge_bodies_get_a_client_error(channel, recorder, body, status):
    assert deliver(channel, body) == status
    settle(channel)
    assert recorder.messages == []


# --- the durable inbox -------------------------------------------------------------------


def test_an_unreachable_inbox_answers_503_so_meta_retries(graph, recorder):
    channel = make_channel(graph, recorder, UNREACHABLE_DATABASE_URL)
    try:
        assert deliver(channel, fixture("text")) == 503
    finally:
        channel.stop()
    assert recorder.messages == []


def test_past_the_bound_of_waiting_messages_webhooks_get_503(graph, sqlite_url):
    stuck = Recorder(work_seconds=3600)  # turns that never end: nothing leaves the inbox
    channel = make_channel(graph, stuck, sqlite_url, max_pending=3, max_concurrency=1)
    try:
        statuses = []
        for number in range(5):
            statuses.append(
                deliver(channel, delivery_with(with_message(text="x", mid=f"m{number}")))
            )
        assert statuses == [200, 200, 200, 503, 503]
        assert rows(sqlite_url, InboxMessage) == 3
    finally:
        channel.stop()


def test_a_message_claimed_by_a_server_that_died_is_taken_over_once(graph, recorder, sqlite_url):
    engine = create_database_engine(sqlite_url)
    dead = Inbox(engine, "dead-replica", timedelta(seconds=1), "k")
    dead.accept([NewMessage("mid.orphan.1", "IG_TEST_1", 1770037200000, "text", "hi")])
    assert [item.mid for item in dead.claim(5)] == ["mid.orphan.1"]  # then the server dies
    channel = make_channel(graph, recorder, sqlite_url)
    try:
        assert wait_until(lambda: recorder.messages, 30)
        settle(channel)
        assert recorder.messages == [("IG_TEST_1", "hi", "mid.orphan.1")]
    finally:
        channel.stop()
        engine.dispose()


def test_a_message_already_in_the_conversation_is_not_applied_twice(graph, recorder, sqlite_url):
    engine = create_database_engine(sqlite_url)
    dead = Inbox(engine, "dead-replica", timedelta(seconds=0), "k")
    dead.accept([NewMessage("mid.seen.1", "IG_TEST_1", 1770037200000, "text", "hi")])
    dead.claim(5)  # the turn reached the tracker, then the server died before sending

    async def in_the_conversation(sender_id: str, mid: str) -> list[dict] | None:
        if (sender_id, mid) == ("IG_TEST_1", "mid.seen.1"):
            return [{"text": "Hi! I was answered before.", "buttons": []}]
        return None

    channel = make_channel(graph, recorder, sqlite_url, answers_if_handled=in_the_conversation)
    try:
        settle(channel)
        assert recorder.messages == []
        assert [m["message"]["text"] for m in graph.messages_to("IG_TEST_1")] == [
            "Hi! I was answered before."
        ]
        assert rows(sqlite_url, InboxMessage, InboxMessage.status == "done") == 1
    finally:
        channel.stop()
        engine.dispose()


def test_the_answers_to_a_message_are_read_back_from_the_conversation():
    events = [
        UserUttered("hi", message_id="mid.1"),
        ActionExecuted("action_greet"),
        BotUttered("Hi!", {"buttons": [{"title": "Book", "payload": "/book"}]}),
        ActionExecuted("action_listen"),
        UserUttered("bye", message_id="mid.2"),
        BotUttered("Goodbye!"),
    ]

    def shown(answers: list[dict]) -> list[tuple]:
        return [(a["text"], a.get("buttons")) for a in answers]

    assert shown(answers_to(events, "mid.1")) == [("Hi!", [{"title": "Book", "payload": "/book"}])]
    assert shown(answers_to(events, "mid.2")) == [("Goodbye!", None)]
    assert answers_to(events, "mid.3") is None


def test_a_handled_message_keeps_no_text(channel, sqlite_url):
    assert deliver(channel, fixture("text")) == 200
    settle(channel)
    assert rows(sqlite_url, InboxMessage, InboxMessage.message_text.is_not(None)) == 0
    assert rows(sqlite_url, OutboxMessage, OutboxMessage.body.is_not(None)) == 0


def test_a_stopping_server_refuses_new_deliveries_and_finishes_its_turns(graph, sqlite_url):
    slow = Recorder(work_seconds=1.0)
    channel = make_channel(graph, slow, sqlite_url)
    try:
        assert deliver(channel, fixture("text")) == 200
        assert wait_until(lambda: slow.busy_senders, 10)
        asyncio.run(channel.drain())  # what SIGTERM runs
        assert slow.messages == [("IG_TEST_1", "hi", "mid.text.1")]
        assert deliver(channel, fixture("quick_reply")) == 503
        assert rows(sqlite_url, InboxMessage, InboxMessage.status == "pending") == 0
    finally:
        channel.stop()


def test_a_drained_server_leaves_waiting_replies_to_the_others(graph, recorder, sqlite_url):
    channel = make_channel(graph, recorder, sqlite_url)
    try:
        asyncio.run(channel.drain())  # what SIGTERM runs
        # A reply waiting for any replica (a retry come due, a dead server's).
        reply = channel.outbox.add("IG_TEST_1", "mid.text.1", 0, {"text": "Hi!"})
        channel.outbox.release([reply])

        channel.sender.poll()  # what the outbox poller runs until the process exits

        assert rows(sqlite_url, OutboxMessage, OutboxMessage.lease_until.is_not(None)) == 0
    finally:
        channel.stop()


def test_turns_beyond_the_grace_period_are_left_for_the_next_start(graph, sqlite_url):
    stuck = Recorder(work_seconds=3600)
    channel = make_channel(graph, stuck, sqlite_url, shutdown_grace_seconds=1)
    try:
        assert deliver(channel, fixture("text")) == 200
        assert wait_until(lambda: stuck.busy_senders, 10)
        asyncio.run(channel.drain())
    finally:
        channel.stop()
    assert rows(sqlite_url, InboxMessage, InboxMessage.lease_until.is_(None)) == 1
    recorder = Recorder()
    restarted = make_channel(graph, recorder, sqlite_url)
    try:
        settle(restarted)
        assert recorder.messages == [("IG_TEST_1", "hi", "mid.text.1")]
    finally:
        restarted.stop()


# --- the durable outbox ------------------------------------------------------------------


def test_a_reply_graph_keeps_refusing_past_the_budget_is_kept_as_failed_and_listed(
    graph, recorder, sqlite_url, monkeypatch, capsys
):
    graph.down_for(3600)
    channel = make_channel(graph, recorder, sqlite_url, outbox_retry_seconds=2)
    try:
        assert deliver(channel, fixture("text")) == 200
        settle(channel)
    finally:
        channel.stop()
    assert graph.delivered == []
    assert rows(sqlite_url, OutboxMessage, OutboxMessage.status == "failed") == 1
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert clinic_cli(["outbox", "--failed"]) == 0
    listing = capsys.readouterr().out
    assert "\tfailed\t" in listing and "gave up: unavailable" in listing
    assert "1 replies given up." in listing
    assert "IG_TEST_1" not in listing and "you said" not in listing


def _one(item: dict, own_app_id: str | None = "42") -> object:
    body = json.dumps({"object": "instagram", "entry": [{"id": "1", "messaging": [item]}]})
    (parsed,) = parse_delivery(body.encode(), own_app_id)
    return parsed


PAGE, PATIENT_ID = {"id": "17841400000000001"}, {"id": "IG_TEST_1"}
SENT = 1770037200000  # Meta's milliseconds


@pytest.mark.parametrize(
    ("message", "own_app_id", "expected"),
    [
        ({"app_id": 42}, "42", Ignored("echo")),  # ours
        ({"app_id": 7}, None, Ignored("echo")),  # can't tell without INSTAGRAM_APP_ID
        ({"app_id": 7}, "42", StaffWrote("IG_TEST_1", SENT, "mid.e")),  # another app
        ({}, "42", StaffWrote("IG_TEST_1", SENT, "mid.e")),  # typed in the Instagram app
        ({}, None, StaffWrote("IG_TEST_1", SENT, "mid.e")),
    ],
)
def test_echoes_are_the_bots_own_or_staff_writing(message, own_app_id, expected):
    echo = {"mid": "mid.e", "text": "Hello from the desk", "is_echo": True, **message}
    item = {"sender": PAGE, "recipient": PATIENT_ID, "timestamp": SENT, "message": echo}
    assert _one(item, own_app_id) == expected


@pytest.mark.parametrize(
    ("control", "own_app_id", "expected"),
    [
        ({"new_owner_app_id": "42"}, "42", ControlReturned("IG_TEST_1", SENT)),
        ({"new_owner_app_id": 42}, "42", ControlReturned("IG_TEST_1", SENT)),
        ({"new_owner_app_id": "7"}, "42", Ignored("handover")),
        ({"new_owner_app_id": "42"}, None, Ignored("handover")),
        ({}, "42", Ignored("handover")),
    ],
)
def test_control_comes_back_only_when_passed_to_our_app(control, own_app_id, expected):
    item = {
        "sender": PATIENT_ID,
        "recipient": PAGE,
        "timestamp": SENT,
        "pass_thread_control": control,
    }
    assert _one(item, own_app_id) == expected


def test_a_staff_echo_with_no_patient_is_malformed():
    echo = {"mid": "mid.e", "text": "hi", "is_echo": True}
    assert _one({"sender": PAGE, "recipient": {"id": ""}, "message": echo}) == Ignored("malformed")


def test_a_handoff_reply_goes_without_thread_control_when_meta_refuses_it(graph, sqlite_url):
    async def hand_off(message: UserMessage) -> None:
        await message.output_channel.send_response(
            message.sender_id, {"text": "A person will reply.", "thread_control": "pass"}
        )

    channel = make_channel(graph, hand_off, sqlite_url)
    graph.queue(FakeResponse.graph_error(100))  # e.g. Conversation Routing not set up
    try:
        assert deliver(channel, fixture("text")) == 200
        settle(channel)
    finally:
        channel.stop()

    refused, sent = graph.sent
    assert refused.body["thread_control"] == {"app_id": "1217981644879628", "control_type": "pass"}
    assert refused.status == 400
    assert sent.body == {
        "recipient": {"id": "IG_TEST_1"},
        "message": {"text": "A person will reply."},
    }


def test_messages_on_the_standby_channel_are_marked_and_left_to_the_app_holding_them(
    channel, recorder, graph, sqlite_url
):
    body = delivery("IG_TEST_1", "hello?", mid="mid.standby.1", standby=True)
    (parsed,) = parse_delivery(body)
    assert parsed.standby and parsed.text == "hello?"

    assert deliver(channel, body) == 200
    settle(channel)

    assert recorder.messages == [] and graph.sent == []
    assert rows(sqlite_url, InboxMessage) == 0


def test_a_turn_that_sends_several_messages_stores_them_in_one_commit_with_its_end(
    graph, sqlite_url
):
    async def three_messages(message: UserMessage) -> None:
        out = message.output_channel
        await out.send_text_message(message.sender_id, "one")
        await out.send_text_message(message.sender_id, "two")
        await out.send_text_with_buttons(
            message.sender_id, "three", [{"title": "OK", "payload": "/a"}]
        )

    channel = make_channel(graph, three_messages, sqlite_url)
    try:
        with StatementLog(channel.outbox.engine) as log:
            assert deliver(channel, fixture("text")) == 200
            settle(channel)
        graph.wait_for(3)
    finally:
        channel.stop()
    (commit,) = log.transactions_with("INSERT INTO outbox_messages")
    assert sum(s.startswith("INSERT INTO outbox_messages") for s in commit) == 3
    assert any(s.startswith("UPDATE inbox_messages SET status") for s in commit)
    texts = [m["message"]["text"] for m in graph.messages_to("IG_TEST_1")]
    assert texts == ["one", "two", "three"]


def test_a_message_outside_a_turn_is_stored_and_sent_at_once(channel, graph, sqlite_url):
    """Rasa's HTTP API (`trigger_intent`, say) writes through `get_output_channel`."""
    output = channel.get_output_channel()
    channel.call(output.send_text_message("IG_TEST_1", "A message of the clinic's."))
    graph.wait_for(1)
    assert graph.messages_to("IG_TEST_1") == [
        {"recipient": {"id": "IG_TEST_1"}, "message": {"text": "A message of the clinic's."}}
    ]
    assert rows(sqlite_url, OutboxMessage, OutboxMessage.status == "sent") == 1
