"""Calls both ways between the rasa server and its delivery process, over a socketpair.

A frame is a 4-byte length and a pickle of `(kind, call id, payload)`. Both ends are this
project's own processes, on a socketpair the parent made (never a listening socket), which
is why pickle is acceptable. An error crosses as its class name only: an exception's text
may quote a patient. A call cancelled here is cancelled on the other side too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pickle
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
Handler = Callable[..., Awaitable[Any]]


class RemoteError(Exception):
    """The call failed on the other side; the message is the exception's class name."""


class PeerClosed(ConnectionError):
    """The other side is gone (exited, killed, or closed the socket)."""


class Peer:
    """One end of the socketpair, on the event loop that runs `start`."""

    def __init__(self, sock: socket.socket, handlers: dict[str, Handler]):
        self._sock = sock
        self._handlers = handlers
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future] = {}
        self._serving: dict[int, asyncio.Task] = {}
        self._writer: asyncio.StreamWriter | None = None
        self.closed: asyncio.Future | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future | None = None

    async def start(self) -> None:
        """Calls made once this has begun wait until the connection is up."""
        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()
        self._ready = self.loop.create_future()
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._ready.set_result(None)
        asyncio.create_task(self._read(reader))

    async def call(self, method: str, *args: Any) -> Any:
        if not self._ready.done():
            await self._ready
        if self.closed.done():
            raise PeerClosed(method)
        call_id = next(self._ids)
        answer = self.loop.create_future()
        self._waiting[call_id] = answer
        self._write(("call", call_id, (method, args)))
        try:
            return await answer
        except asyncio.CancelledError:
            if not self.closed.done():
                self._write(("cancel", call_id, None))
            raise
        finally:
            self._waiting.pop(call_id, None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def shutdown(self) -> None:
        """Ends the connection from any thread: the other side reads its end at once."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _write(self, frame: tuple) -> None:
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(data)) + data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                frame = await reader.readexactly(length)
                kind, call_id, payload = pickle.loads(frame)  # noqa: S301 - our own process
                if kind == "call":
                    task = asyncio.create_task(self._serve(call_id, *payload))
                    self._serving[call_id] = task
                elif kind == "cancel":
                    task = self._serving.get(call_id)
                    if task is not None:
                        task.cancel()
                else:
                    self._answered(kind, call_id, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._closed()

    def _answered(self, kind: str, call_id: int, payload: Any) -> None:
        answer = self._waiting.get(call_id)
        if answer is None or answer.done():
            return
        if kind == "result":
            answer.set_result(payload)
        else:
            answer.set_exception(RemoteError(payload))

    async def _serve(self, call_id: int, method: str, args: tuple) -> None:
        try:
            result = await self._handlers[method](*args)
        except asyncio.CancelledError:
            return  # the caller cancelled: it waits for nothing
        except Exception as error:  # noqa: BLE001 - the class only: it may quote a patient
            if not self.closed.done():
                self._write(("error", call_id, type(error).__name__))
        else:
            if not self.closed.done():
                self._write(("result", call_id, result))
        finally:
            self._serving.pop(call_id, None)

    def _closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(PeerClosed("the other side is gone"))
        for task in list(self._serving.values()):
            task.cancel()
        with contextlib.suppress(Exception):
            self._writer.close()
