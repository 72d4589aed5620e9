"""The channel's delivery process: calls both ways over a socketpair; a real delivery
process that takes Meta's deliveries and asks the rasa server's side for the turns; one that
dies is replaced and its work is done once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Iterator

import pytest

from clinic.delivery import InboxItem
from connectors.delivery_process import DeliveryProcess, DialogueLoop, restart_delay
from connectors.fake_graph import FakeGraphApi
from connectors.rpc import Peer, PeerClosed, RemoteError
from connectors.simulate import delivery
from connectors.webhook import signature
from tests.helpers import wait_until

SECRET = "process-app-secret"
PATIENT = "IG_TEST_PROCESS_1"

# --- calls both ways --------------------------------------------------------------------


async def connected(handlers_a: dict, handlers_b: dict) -> tuple[Peer, Peer]:
    one, other = socket.socketpair()
    a, b = Peer(one, handlers_a), Peer(other, handlers_b)
    await a.start()
    await b.start()
    return a, b


def test_a_process_that_keeps_dying_at_start_is_started_less_and_less_often():
    delays, previous = [], None
    for _ in range(7):
        previous = restart_delay(previous, lived_seconds=0.5)
        delays.append(previous)

    assert delays == [1, 2, 4, 8, 16, 30, 30]
    # One that ran a while before it died is replaced a second later, as the first was.
    assert restart_delay(30, lived_seconds=600) == 1


def test_calls_go_both_ways_and_an_error_crosses_as_its_class_only():
    async def scenario() -> None:
        async def double(x: int) -> int:
            return 2 * x

        async def fail() -> None:
            raise ValueError("PATIENT_TEST +1 202 555 0143")

        async def ask_back(x: int) -> int:
            return await b.call("double", x) + 1

        a, b = await connected({"double": double, "fail": fail}, {"ask_back": ask_back})
        b._handlers["double"] = double  # both sides serve "double"
        assert await b.call("double", 21) == 42
        assert await a.call("ask_back", 20) == 41  # a calls b, which calls a meanwhile
        with pytest.raises(RemoteError) as raised:
            await b.call("fail")
        assert str(raised.value) == "ValueError"  # never the text, which may quote a patient

    asyncio.run(scenario())


def test_a_call_cancelled_here_is_cancelled_there():
    async def scenario() -> None:
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def slow() -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        a, _b = await connected({}, {"slow": slow})
        call = asyncio.create_task(a.call("slow"))
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        await asyncio.wait_for(cancelled.wait(), 10)

    asyncio.run(scenario())


def test_when_the_other_side_goes_waiting_calls_fail_at_once():
    async def scenario() -> None:
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.sleep(3600)

        a, b = await connected({}, {"hang": hang})
        call = asyncio.create_task(a.call("hang"))
        await asyncio.wait_for(started.wait(), 10)
        b.close()
        with pytest.raises(PeerClosed):
            await asyncio.wait_for(call, 10)
        with pytest.raises(PeerClosed):
            await a.call("hang")

    asyncio.run(scenario())


# --- a real delivery process ---------------------------------------------------------------


class Dialogue:
    """Stands in for Rasa: answers each message with one reply, through the process."""

    def __init__(self) -> None:
        self.process: DeliveryProcess | None = None
        self.turns: list[tuple[str, int, str]] = []  # (mid, attempt, thread)
        self.hold_first = threading.Event()  # set: the first turn waits until released
        self.release = threading.Event()
        self._lock = threading.Lock()

    async def converse(self, item: InboxItem) -> None:
        with self._lock:
            self.turns.append((item.mid, item.attempts, threading.current_thread().name))
            first = len(self.turns) == 1
        while first and self.hold_first.is_set() and not self.release.is_set():
            await asyncio.sleep(0.01)
        await self.process.send_reply(item.sender_id, item.mid, 0, {"text": f"got {item.text}"})

    async def replay(self, _item: InboxItem) -> bool:
        return False  # nothing reaches a conversation here


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    with FakeGraphApi(access_token="process-token") as fake:
        yield fake


@pytest.fixture
def running(
    graph, sqlite_url, monkeypatch
) -> Iterator[tuple[DeliveryProcess, Dialogue, DialogueLoop]]:
    """A delivery process, its rasa-side handle on a loop standing in for the web server's."""
    for name in [n for n in os.environ if n.startswith("INSTAGRAM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", graph.base_url)
    monkeypatch.setenv("INSTAGRAM_TYPING_INDICATOR", "0")
    monkeypatch.setenv("REPLICA_ID", "process-test")
    dialogue = Dialogue()
    process = DeliveryProcess(
        ("verify", SECRET, "process-token"), dialogue.converse, dialogue.replay
    )
    dialogue.process = process
    web = DialogueLoop(max_workers=2)
    web.start()
    web.submit(process.start()).result(60)
    web.submit(process.start_turns()).result(60)
    yield process, dialogue, web
    web.submit(process.drain()).result(60)
    web.loop.call_soon_threadsafe(process.stop)
    assert wait_until(lambda: process._child.poll() is not None, 30)
    assert process._child.returncode == 0  # it ended on its own, not killed after a wait
    web.stop()


def deliver(web: DialogueLoop, process: DeliveryProcess, text: str) -> int:
    body = delivery(PATIENT, text)
    status, _ = web.submit(process.deliver(body, signature(body, SECRET))).result(60)
    return status


def replies(graph: FakeGraphApi) -> list[str]:
    return [m["message"]["text"] for m in graph.messages_to(PATIENT) if "message" in m]


def test_the_process_takes_deliveries_and_the_turns_run_on_the_rasa_side(running, graph):
    process, dialogue, web = running
    assert deliver(web, process, "hello") == 200
    assert wait_until(lambda: replies(graph) == ["got hello"], 30), replies(graph)
    ((_mid, attempt, thread),) = dialogue.turns
    assert (attempt, thread) == (1, "dialogue")  # not on the web server's loop
    assert process._child.pid != os.getpid()
    # Rasa's HTTP API may write through the channel from the web server's loop too.
    web.submit(process.send_reply(PATIENT, "out-1", 0, {"text": "from the web loop"})).result(30)
    assert wait_until(lambda: replies(graph) == ["got hello", "from the web loop"], 30)


def test_a_process_that_dies_is_replaced_and_its_message_answered_once(running, graph):
    process, dialogue, web = running
    dialogue.hold_first.set()
    assert deliver(web, process, "hello") == 200
    assert wait_until(lambda: len(dialogue.turns) == 1, 30)
    first_child = process._child.pid
    os.kill(first_child, signal.SIGKILL)
    # Meanwhile deliveries get 503 (Meta retries them); the new process takes them.
    assert wait_until(lambda: process._child.pid != first_child, 30)
    assert wait_until(lambda: deliver(web, process, "again") == 200, 60)
    dialogue.release.set()
    assert wait_until(lambda: sorted(replies(graph)) == ["got again", "got hello"], 60), replies(
        graph
    )
    assert not wait_until(lambda: len(replies(graph)) > 2, 3)
    retried = [attempt for mid, attempt, _ in dialogue.turns if mid == dialogue.turns[0][0]]
    assert retried == [1, 2]  # the turn cut short by the crash ran again, after the restart
