"""Small helpers for tests that run real processes."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class StatementLog:
    """The SQL statements and transactions an engine runs while the log is open; `grouped`
    holds each transaction's statements (by connection, so threads don't mix them)."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []
        self.transactions = 0
        self.grouped: list[list[str]] = []
        self._current: dict[int, list[str]] = {}

    def __enter__(self) -> StatementLog:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "begin", self._begin)
        return self

    def __exit__(self, *_: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "begin", self._begin)

    def _statement(self, conn, _cursor, statement, *_args) -> None:
        statement = " ".join(statement.split())
        self.statements.append(statement)
        self._current.setdefault(id(conn), []).append(statement)

    def _begin(self, conn) -> None:
        self.transactions += 1
        self._current[id(conn)] = []
        self.grouped.append(self._current[id(conn)])

    def transactions_with(self, start: str) -> list[list[str]]:
        """The transactions that ran a statement starting with `start`."""
        return [group for group in self.grouped if any(s.startswith(start) for s in group)]

    def reads_of(self, table: str) -> int:
        return sum(1 for s in self.statements if s.startswith("SELECT") and f"FROM {table}" in s)


class ChannelOnLoop:
    """An Instagram channel run as a rasa server runs it, on one event loop (Sanic's there,
    a thread's here), called from the test's thread and from loops of its own."""

    def __init__(self, channel, on_new_message, answers_if_handled=None):
        import asyncio
        import threading

        self.channel = channel
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

        async def start() -> None:
            await channel.open(*channel.dialogue(on_new_message, answers_if_handled))
            channel.start_turns()

        self.call(start())

    def call(self, coroutine, timeout: float = 120):
        """Runs `coroutine` on the channel's loop; its result."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def receive(self, body: bytes, header: str | None):
        import asyncio

        future = asyncio.run_coroutine_threadsafe(self.channel.receive(body, header), self.loop)
        return await asyncio.wrap_future(future)

    async def drain(self) -> int:
        import asyncio

        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self.channel.drain(), self.loop)
        )

    def stop(self) -> None:
        if self._thread.is_alive():
            self.call(self.channel.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def wait_idle(self, timeout: float) -> bool:
        """True once every accepted message is handled and every reply sent."""
        channel = self.channel

        def idle() -> bool:
            busy = channel.worker.running or channel.sender.held
            return not busy and channel.inbox.pending() == 0 and channel.outbox.pending() == 0

        return wait_until(idle, timeout, 0.02)

    def __getattr__(self, name: str):
        return getattr(self.channel, name)
