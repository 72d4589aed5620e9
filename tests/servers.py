"""Real rasa and action server processes for end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "clinic.tar.gz"
REST_CREDENTIALS = ROOT / "tests" / "fixtures" / "credentials-rest.yml"


def http_json(url: str, payload: dict | None = None, timeout: float = 60) -> object:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback test servers only
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def http_get(url: str, **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (any case) and body of a GET, whatever the status."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback servers
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    """An action server and rasa servers sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def start_action_server(self, port: int | None = None) -> str:
        port = port or free_port()
        process = self._start(
            f"actions-{port}",
            [str(BIN / "python"), "-m", "actions"],
            {"ACTION_SERVER_PORT": str(port)},
        )
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: answers(f"{url}/health"), 120, f"action server on {port}", process)
        self.env["ACTION_SERVER_URL"] = f"{url}/webhook"
        return url

    def start_rasa(
        self,
        credentials: Path = REST_CREDENTIALS,
        port: int | None = None,
        api: bool = True,
        ready_path: str = "/",
        launcher: tuple[str, ...] = (str(BIN / "rasa"),),
        **env: str,
    ) -> str:
        port = port or free_port()
        command = [
            *launcher,
            "run",
            "--model",
            str(MODEL),
            "--endpoints",
            "endpoints.yml",
            "--credentials",
            str(credentials),
            "--port",
            str(port),
        ]
        if api:
            command.append("--enable-api")
        # The replica's name in the inbox's leases stays the same across its restarts.
        process = self._start(f"rasa-{port}", command, {"REPLICA_ID": f"replica-{port}", **env})
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: answers(f"{url}{ready_path}"), 240, f"rasa server on {port}", process)
        if api:  # the HTTP API answers "/" before the model is loaded
            _wait(lambda: _model_loaded(url), 240, f"model on {port}", process)
        return url

    def start_console(self, port: int | None = None, **env: str) -> str:
        """`python -m clinic console` on `port`; its URL once the sign-in page answers."""
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        process = self._start(
            f"console-{port}",
            [str(BIN / "python"), "-m", "clinic", "console"],
            {"CONSOLE_PORT": str(port), "CONSOLE_URL": url, **env},
        )
        _wait(lambda: answers(f"{url}/sign-in"), 60, f"console on {port}", process)
        return url

    def _start(self, name: str, command: list[str], env: dict | None = None) -> Process:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:  # a restarted server writes on after its first life
            popen = subprocess.Popen(  # noqa: S603 - our own commands
                command,
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def process(self, prefix: str) -> Process:
        return next(p for p in self.processes if p.name.startswith(prefix))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(p.log() for p in self.processes)


def _model_loaded(url: str) -> bool:
    try:
        status = http_json(f"{url}/status", timeout=5)
    except OSError:
        return False
    return bool(isinstance(status, dict) and status.get("model_file"))


def _wait(condition, timeout: float, what: str, process: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.popen.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{process.log()[-3000:]}")
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def stack_environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSTAGRAM_")}
    env.update(
        DATABASE_URL=database_url,
        RASA_TELEMETRY_ENABLED="false",
        PYTHONPATH=f"{ROOT / 'startup'}:{ROOT}",  # as scripts/startup-env starts servers
        LOG_LEVEL=os.environ.get("TEST_LOG_LEVEL", "INFO"),
        ACTION_SERVER_TOKEN=secrets.token_urlsafe(32),
        CONSOLE_SECRET_KEY=secrets.token_urlsafe(32),
    )
    env.update(extra)
    return env


def scaled_out_environment(database_url: str, graph_url: str, prefix: str) -> dict[str, str]:
    """Settings of replicas sharing PostgreSQL (bookings, the inbox and outbox, conversations)
    and Redis (locks); `prefix` keeps this run's Redis keys apart from any other's."""
    from tests.redis_support import REDIS_URL

    return dict(
        TRACKER_STORE_URL=database_url,
        LOCK_STORE_URL=REDIS_URL,
        LOCK_STORE_KEY_PREFIX=prefix.replace("-", "") + "lock",  # Rasa wants letters and digits
        INSTAGRAM_GRAPH_URL=graph_url,
        INSTAGRAM_TYPING_INDICATOR="0",
    )


def clinic_command(database_url: str, argv: list[str]) -> int:
    """`python -m clinic …` on `database_url`, in this process."""
    from entrypoints.cli import main

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url
    try:
        return main(argv)
    finally:
        if previous is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = previous


@contextmanager
def running_stack(database_url: str, log_dir: Path, **extra: str) -> Iterator[Stack]:
    stack = Stack(stack_environment(database_url, **extra), log_dir)
    try:
        yield stack
    finally:
        stack.stop()


def say(rasa_url: str, sender: str, text: str) -> list[dict]:
    """One user message through the REST channel; the bot's answers."""
    reply = http_json(f"{rasa_url}/webhooks/rest/webhook", {"sender": sender, "message": text})
    return reply if isinstance(reply, list) else []


def action_call(sender_id: str) -> dict:
    """The body of the rasa server's call of `action_greet` for a new conversation."""
    return {
        "next_action": "action_greet",
        "sender_id": sender_id,
        "tracker": {
            "sender_id": sender_id,
            "slots": {},
            "latest_message": {"text": "hi", "intent": {"name": "greet"}, "entities": []},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": {},
        "version": "3.6.21",
    }


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)
