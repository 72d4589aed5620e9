"""`make simulate` (scripts/simulate) listens on loopback only: every server it starts, read
from the kernel's table of listening sockets, even when the environment asks for 0.0.0.0."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.helpers import free_port, wait_until
from tests.servers import MODEL, ROOT, clinic_command

PORTS = ("RASA_PORT", "ACTION_SERVER_PORT", "FAKE_GRAPH_PORT", "FAKE_TWILIO_PORT", "CONSOLE_PORT")
LISTEN = "0A"  # TCP state in /proc/net/tcp*


def listening_addresses() -> dict[int, set[str]]:
    """Port -> the addresses (hex, as /proc spells them) something listens on for it."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == LISTEN:
                address, port = local.split(":")
                found.setdefault(int(port, 16), set()).add(address)
    return found


def test_every_server_of_make_simulate_listens_on_loopback_only(tmp_path):
    assert MODEL.exists(), "run `make train` first"
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    assert clinic_command(database_url, ["init"]) == 0
    ports = {name: free_port() for name in PORTS}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSTAGRAM_", "TWILIO_"))}
    for name in ("ACTION_SERVER_URL", "CONSOLE_URL", "PUBLIC_URL"):
        env.pop(name, None)
    env.update(
        {name: str(port) for name, port in ports.items()},
        DATABASE_URL=database_url,
        MODEL=str(MODEL),
        ACTION_SERVER_HOST="0.0.0.0",  # noqa: S104 - what the script must not follow
        CONSOLE_HOST="0.0.0.0",  # noqa: S104
    )
    log = tmp_path / "simulate.log"
    with log.open("w") as output:
        simulate = subprocess.Popen(
            ["scripts/simulate"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,  # the chat waits for a line while the servers run
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = wait_until(lambda: set(ports.values()) <= set(listening_addresses()), 300)
        assert started, log.read_text()[-3000:]
        bound = {name: listening_addresses()[port] for name, port in ports.items()}
        assert bound == {name: {"0100007F"} for name in PORTS}  # 127.0.0.1, no :: or 0.0.0.0
    finally:
        os.killpg(simulate.pid, signal.SIGTERM)
        simulate.wait(timeout=60)
