"""`rasa run actions`, the command every Rasa user types, starts the same action server as
`python -m actions`: same settings, same token check. A real process each time."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.helpers import free_port, wait_until
from tests.servers import BIN, Stack, action_call, answers, stack_environment


def call(url: str, token: str | None, body: bytes) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{url}/webhook", data=body, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    "command",
    [["rasa", "run", "actions", "--port"], ["python", "-m", "actions"]],
    ids=["rasa-run-actions", "python-m-actions"],
)
def test_the_action_server_answers_only_an_authenticated_call(sqlite_url, tmp_path, command):
    port = free_port()
    env = stack_environment(sqlite_url, ACTION_SERVER_PORT=str(port))
    stack = Stack(env, tmp_path)
    argv = [str(BIN / command[0]), *command[1:]]
    # `python -m actions` reads its port from ACTION_SERVER_PORT, `rasa` from --port.
    process = stack._start("actions", argv + [str(port)] if command[0] == "rasa" else argv)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: answers(f"{url}/health") or process.popen.poll(), 120)
        assert process.popen.poll() is None, process.log()[-3000:]
        body = json.dumps(action_call("IG_TEST_1")).encode()
        token = env["ACTION_SERVER_TOKEN"]

        assert call(url, None, body) == (401, {"error": "unauthorized"})
        assert call(url, "not-the-secret", body) == (401, {"error": "unauthorized"})
        status, answer = call(url, token, body)
        assert status == 200
        assert answer["responses"] and isinstance(answer["events"], list)
        assert call(url, token, b"{not json") == (400, {"error": "Invalid body request"})
        assert "IG_TEST_1" not in process.log()
    finally:
        stack.stop()
