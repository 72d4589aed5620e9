"""`make run`'s last step, driven in tmux like a person at a terminal.

Needs the trained model (make test trains it before pytest runs).
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.cli import main as clinic_cli
from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "clinic.tar.gz"


class Terminal:
    def __init__(self, env: dict[str, str]):
        self.socket = f"clinic-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    def start(self, command: str) -> None:
        self.tmux(
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            str(ROOT),
            f"{command}; echo SHELL-EXITED; sleep 120",
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-S", "-200")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def wait_for(self, text: str, timeout: float) -> bool:
        return wait_until(lambda: text in self.screen(), timeout, interval=0.5)

    def close(self) -> None:
        self.tmux("kill-server")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Terminal, int]]:
    assert MODEL.exists(), "run `make train` first"
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert clinic_cli(["init"]) == 0
    assert clinic_cli(["seed", "--demo"]) == 0
    action_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSTAGRAM_")}
    env.pop("ACTION_SERVER_URL", None)
    env.pop("CONSOLE_URL", None)
    env.update(
        DATABASE_URL=database_url,
        ACTION_SERVER_PORT=str(action_port),
        RASA_PORT=str(free_port()),
        CONSOLE_PORT=str(free_port()),
    )
    term = Terminal(env)
    yield term, action_port
    term.close()


@pytest.mark.parametrize("leave", [["/stop", "Enter"], ["C-c"]], ids=["stop", "ctrl-c"])
def test_shell_answers_hi_and_its_action_server_stops_with_it(terminal, leave):
    term, action_port = terminal
    term.start("scripts/run-shell")
    assert term.wait_for("Your input", timeout=180), term.screen()
    assert answers(f"http://127.0.0.1:{action_port}/health")
    console = f"http://127.0.0.1:{term.env['CONSOLE_PORT']}"
    assert f"Staff console: {console}/" in term.screen()
    assert f"{console}/welcome/" in term.screen()  # the first admin's sign-in link
    assert answers(f"{console}/sign-in")
    term.type("hi", "Enter")
    assert term.wait_for("I'm the clinic's booking assistant", timeout=30), term.screen()
    term.type(*leave)
    assert term.wait_for("SHELL-EXITED", timeout=30), term.screen()
    assert wait_until(lambda: not answers(f"http://127.0.0.1:{action_port}/health"), 10)
    assert wait_until(lambda: not answers(f"{console}/sign-in"), 10)
