"""The containers start as deploy/Dockerfile.* say (ENTRYPOINT, CMD, ENV and WORKDIR read from
the files, with /app as this checkout), so the check they run cannot drift from them: the
production check of `make serve` first, then the server, or nothing with a reason."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from clinic.settings import DEVELOPMENT_HASH_KEY
from tests.helpers import free_port, wait_until
from tests.servers import answers

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = ["Dockerfile.rasa", "Dockerfile.actions"]
GOOD_KEY = "k" * 32  # the shortest key production takes
SECRETS = {"ID_HASH_KEY": GOOD_KEY, "ACTION_SERVER_TOKEN": "a-token"}
SHORT_KEY_REFUSED = "ID_HASH_KEY is too short (31 characters): it must be at least 32"
DEBUG_REFUSED = "LOG_LEVEL=DEBUG logs more of each conversation: set ALLOW_DEBUG_LOGS=1 to allow it"


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = (ROOT / "deploy" / dockerfile).read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def start_command(dockerfile: str) -> tuple[list[str], list[str]]:
    """The image's ENTRYPOINT and CMD (the last of each, in exec form)."""
    found = {
        name: json.loads(args)
        for name, args in instructions(dockerfile)
        if name in {"ENTRYPOINT", "CMD"}
    }
    return found["ENTRYPOINT"], found["CMD"]


def image_environment(dockerfile: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The image's ENV lines with /app as this checkout, `python` the test's, and `extra`."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}",
    }
    for name, args in instructions(dockerfile):
        if name == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(args.replace("/app", str(ROOT))))
    return {**env, **extra}


def run_start(dockerfile: str, tmp_path: Path, command: list[str] | None = None, **env: str):
    entrypoint, cmd = start_command(dockerfile)
    return subprocess.run(
        entrypoint + (cmd if command is None else command),
        cwd=ROOT,  # WORKDIR /app
        env=image_environment(dockerfile, tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,  # a check that let the real server start would run into this
    )


def test_every_image_starts_through_the_production_check():
    for dockerfile in DOCKERFILES:
        assert start_command(dockerfile)[0] == ["python", "-m", "clinic.production"], dockerfile


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**SECRETS, "ID_HASH_KEY": DEVELOPMENT_HASH_KEY}, "ID_HASH_KEY is not set (the dev"),
        ({**SECRETS, "ID_HASH_KEY": "k" * 31}, SHORT_KEY_REFUSED),
        ({"ACTION_SERVER_TOKEN": "a-token"}, "ID_HASH_KEY is not set"),
        ({**SECRETS, "LOG_LEVEL": "DEBUG"}, DEBUG_REFUSED),
        ({**SECRETS, "LOG_LEVEL": "debug", "ALLOW_DEBUG_LOGS": "0"}, DEBUG_REFUSED),
    ],
    ids=["development-key", "short-key", "no-key", "debug", "debug-lowercase-not-allowed"],
)
def test_the_server_command_as_written_is_refused_naming_the_problem(
    dockerfile, env, named, tmp_path
):
    result = run_start(dockerfile, tmp_path, **env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"error: {named}" in result.stderr
    assert result.stdout == ""  # the server never started: only the check's lines
    assert all(line.startswith("error: ") for line in result.stderr.splitlines())


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_allowed_debug_logs_start_with_a_warning_line(dockerfile, tmp_path):
    """As `docker run IMAGE COMMAND`: the image's ENTRYPOINT with another command."""
    command = ["python", "-c", "print('command started')"]
    env = {**SECRETS, "LOG_LEVEL": "DEBUG", "ALLOW_DEBUG_LOGS": "1"}
    result = run_start(dockerfile, tmp_path, command, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "command started\n"
    assert result.stderr.splitlines()[0].startswith("WARNING: debug logs are on (LOG_LEVEL=DEBUG")


def test_without_debug_logs_nothing_is_warned(tmp_path):
    result = run_start("Dockerfile.actions", tmp_path, ["python", "-c", "print('ok')"], **SECRETS)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_the_action_image_starts_its_server_after_the_check(tmp_path):
    """The CMD as written: the action server answers, and its log begins with the warning."""
    entrypoint, cmd = start_command("Dockerfile.actions")
    port = free_port()
    env = {
        **SECRETS,
        "LOG_LEVEL": "DEBUG",
        "ALLOW_DEBUG_LOGS": "1",
        "ACTION_SERVER_PORT": str(port),
    }
    log = tmp_path / "actions.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            entrypoint + cmd,
            cwd=ROOT,
            env=image_environment("Dockerfile.actions", tmp_path, **env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/health"), 90), log.read_text()
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert log.read_text().startswith("WARNING: debug logs are on")


@pytest.mark.parametrize(
    ("allow", "returncode", "first_line"), [("0", 1, "error: "), ("1", 0, "WARNING: ")]
)
def test_make_serve_runs_the_same_check(allow, returncode, first_line, tmp_path):
    """`make serve` and scripts/serve run `python -m clinic settings --check-production`."""
    env = {**SECRETS, "LOG_LEVEL": "DEBUG", "ALLOW_DEBUG_LOGS": allow}
    result = subprocess.run(
        [sys.executable, "-m", "clinic", "settings", "--check-production"],
        cwd=ROOT,
        env=image_environment("Dockerfile.rasa", tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == returncode, result.stderr[-2000:]
    assert result.stderr.startswith(first_line) and "DEBUG" in result.stderr
    for script in ("Makefile", "scripts/serve"):
        assert "-m clinic settings --check-production" in (ROOT / script).read_text()
