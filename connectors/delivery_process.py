"""The channel's delivery process: its database and Graph work beside the rasa server,
not inside it.

The rasa server's process runs the model under one interpreter lock; each inbox commit,
outbox commit and Graph send in it gave that lock up and took it back behind the dialogue,
and at 20 patients at once Instagram turns took twice REST's time (docs/benchmarks.md).
So each rasa server starts this process (`InstagramChannel` without Rasa) and talks to it
over two socketpairs (`connectors/rpc.py`):
- intake, on the web server's loop: `deliver(body, signature)` -> (status, text); `ping`,
  `start_turns` (once Rasa's agent is loaded), `drain` (SIGTERM);
- turns, on the rasa server's dialogue loop: the delivery process asks `converse(item)` and
  `replay(item)`; the rasa server answers with `reply(...)` for each message Rasa sends.

The delivery process ignores SIGINT and SIGTERM (the rasa server drains it) and exits as
soon as the rasa server is gone, killed included: its sockets close. What it held then is
freed by the next start (`Inbox.recover`) or when its leases run out. If it dies, the rasa
server answers 503 until it has started a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop

from clinic.redaction import REDACTOR
from clinic.redaction import install as install_redaction
from clinic.settings import load_settings
from connectors.channel_core import (
    SWITCH_INTERVAL_SECONDS,
    UNAVAILABLE,
    Answer,
    Converse,
    InstagramChannel,
    Replay,
)
from connectors.rpc import Peer, PeerClosed, RemoteError

logger = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a process that lived this long was not failing as it started
EXIT_WAIT_SECONDS = 5.0
_TOKENS = ("INSTAGRAM_VERIFY_TOKEN", "INSTAGRAM_APP_SECRET", "INSTAGRAM_ACCESS_TOKEN")
_LOG_LEVEL = "DELIVERY_PROCESS_LOG_LEVEL"
_PR_SET_PDEATHSIG = 1


class DeliveryProcess:
    """The rasa server's side: starts the process, forwards deliveries, hosts the turns it
    asks for on a dialogue loop of their own (so Meta's webhooks never wait behind the
    model), and starts a new process if it dies."""

    def __init__(self, tokens: tuple[str, str, str], converse: Converse, replay: Replay):
        self._tokens = tokens
        self._handlers = {"converse": converse, "replay": replay}
        self._dialogue = DialogueLoop(max_workers=32)
        self._child: subprocess.Popen | None = None
        self._intake: Peer | None = None
        self._turns: Peer | None = None
        self._turns_started = False
        self._stopping = False
        self._watcher: asyncio.Task | None = None
        self._started_at = 0.0

    async def start(self) -> None:
        """Starts the process and waits until it takes deliveries. On the web server's loop."""
        # The dialogue thread keeps the interpreter busy with the model; with Python's
        # default 5 ms turns, each step of a webhook's forwarding would wait that long.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        self._dialogue.start()
        await self._spawn()
        self._watcher = asyncio.create_task(self._watch())

    async def start_turns(self) -> None:
        """Once Rasa's agent is loaded. A process that died meanwhile is started again by
        the watcher, which starts its turns."""
        self._turns_started = True
        try:
            await self._intake.call("start_turns")
        except (PeerClosed, RemoteError) as error:
            logger.error("delivery process turns not started: %s", type(error).__name__)

    async def deliver(self, body: bytes, signature_header: str | None) -> Answer:
        try:
            return await self._intake.call("deliver", body, signature_header)
        except (PeerClosed, RemoteError) as error:
            logger.error("instagram delivery deferred: delivery process (%s)", type(error).__name__)
            return UNAVAILABLE

    async def send_reply(self, *reply: Any) -> None:
        """`reply(recipient id, inbox mid, seq, message)` from any loop."""
        turns = self._turns
        if turns.loop is None or turns.loop.is_closed():
            raise PeerClosed("the delivery process is starting or gone")
        if asyncio.get_running_loop() is turns.loop:
            await turns.call("reply", *reply)
        else:
            future = asyncio.run_coroutine_threadsafe(turns.call("reply", *reply), turns.loop)
            await asyncio.wrap_future(future)

    async def drain(self) -> int:
        self._stopping = True
        try:
            return await self._intake.call("drain")
        except (PeerClosed, RemoteError) as error:
            logger.warning("delivery process not drained: %s", type(error).__name__)
            return 0

    def stop(self) -> None:
        """Closes the sockets (the process exits on that) and waits for it to go."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
        self._close()
        self._dialogue.stop()

    async def _spawn(self) -> None:
        intake, child_intake = socket.socketpair()
        turns, child_turns = socket.socketpair()
        level = logging.getLevelName(logging.getLogger("rasa").getEffectiveLevel())
        env = {**os.environ, **dict(zip(_TOKENS, self._tokens, strict=True)), _LOG_LEVEL: level}
        fds = (child_intake.fileno(), child_turns.fileno())
        self._child = subprocess.Popen(  # noqa: S603 - our own module, by our interpreter
            [sys.executable, "-m", "connectors.delivery_process", *map(str, fds)],
            pass_fds=fds,
            env=env,
        )
        child_intake.close()
        child_turns.close()
        self._intake = Peer(intake, {})
        await self._intake.start()
        self._turns = Peer(turns, self._handlers)
        await asyncio.wrap_future(self._dialogue.submit(self._turns.start()))
        await self._intake.call("ping")
        if self._turns_started:  # a replacement, once Rasa's agent is loaded
            await self._intake.call("start_turns")
        self._started_at = time.monotonic()
        logger.info("delivery process started (pid %d)", self._child.pid)

    async def _watch(self) -> None:
        """A delivery process that died is replaced; deliveries get 503 meanwhile."""
        delay = None
        while not self._stopping:
            await self._intake.closed
            if self._stopping:
                return
            code = await asyncio.to_thread(self._child.wait)
            delay = restart_delay(delay, time.monotonic() - self._started_at)
            logger.error("delivery process exited (code %s); a new one in %.0f s", code, delay)
            self._close()
            await asyncio.sleep(delay)
            if self._stopping:  # a server on its way down starts no new one
                return
            try:
                await self._spawn()
            except Exception as error:  # noqa: BLE001 - the watcher outlives any fault
                logger.error("delivery process did not start: %s", type(error).__name__)

    def _close(self) -> None:
        for peer in (self._intake, self._turns):
            if peer is not None:
                peer.shutdown()
        child = self._child
        if child is None:
            return
        try:
            child.wait(EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def restart_delay(previous: float | None, lived_seconds: float) -> float:
    """The wait before a new delivery process: a second after one that ran a while; twice the
    last wait, up to 30 s, while each dies soon after it started (a process that cannot run
    would otherwise be started every second for ever, each start logged)."""
    if previous is None or lived_seconds >= STABLE_SECONDS:
        return RESTART_DELAY_SECONDS
    return min(2 * previous, MAX_RESTART_DELAY_SECONDS)


class DialogueLoop:
    """A thread running an event loop (uvloop, as Sanic's: Rasa's calls to the action server
    are faster on it) with its own pool for Rasa's blocking work."""

    def __init__(self, max_workers: int):
        self.loop = uvloop.new_event_loop()
        self.loop.set_default_executor(ThreadPoolExecutor(max_workers=max_workers))
        self._thread = threading.Thread(target=self._run, name="dialogue", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def submit(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()


# --- the delivery process itself ---------------------------------------------------


def main() -> None:
    intake_fd, turns_fd = (int(fd) for fd in sys.argv[1:3])
    # The rasa server drains this process on SIGTERM; a terminal's Ctrl-C is for it too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    install_redaction(REDACTOR)  # as in the rasa server: no line quotes a patient whole
    logging.basicConfig(
        level=os.environ.get(_LOG_LEVEL, "INFO"),
        format="%(asctime)s %(levelname)-8s %(name)s  - %(message)s",
    )
    uvloop.install()
    asyncio.run(_serve(intake_fd, turns_fd))


async def _serve(intake_fd: int, turns_fd: int) -> None:
    tokens = [os.environ.get(name, "") for name in _TOKENS]
    channel = InstagramChannel(*tokens, settings=load_settings())
    turns = Peer(socket.socket(fileno=turns_fd), {"reply": channel.send_reply})

    async def converse(item: Any) -> None:
        await turns.call("converse", item)

    async def replay(item: Any) -> bool:
        return await turns.call("replay", item)

    async def start_turns() -> None:
        if channel.worker.started():
            return  # the server's start and its watcher may both ask
        # Queued before the worker's loop runs, so it begins before any turn can call.
        started = asyncio.run_coroutine_threadsafe(turns.start(), channel.worker.loop)
        channel.start_turns()
        await asyncio.wrap_future(started)

    async def ping() -> None:
        return None

    channel.open(converse, replay)
    intake = Peer(
        socket.socket(fileno=intake_fd),
        {
            "deliver": channel.take_delivery,
            "start_turns": start_turns,
            "drain": channel.drain,
            "ping": ping,
        },
    )
    await intake.start()
    await intake.closed  # the rasa server is gone, or done with us
    logger.info("delivery process exits")
    os._exit(0)  # at once: no thread (a database call, a send) is waited for


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the rasa server dies (belt and braces:
    the closed sockets end it too)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


if __name__ == "__main__":
    main()
