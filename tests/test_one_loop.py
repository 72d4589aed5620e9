"""A rasa server with the Instagram channel is one process with one event loop (Sanic's):
the channel's intake, turns and sends are tasks on it, its blocking calls in an executor."""

from __future__ import annotations

import json
import os
import signal

from connectors.fake_graph import FakeGraphApi
from connectors.simulate import delivery, post_delivery
from tests.helpers import wait_until
from tests.servers import BIN, ROOT, clinic_command, running_stack

SECRET = "loop-app-secret"


def test_a_rasa_server_runs_one_event_loop(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'loop.db'}"
    census = tmp_path / "census.json"
    with FakeGraphApi(access_token="loop-token") as graph:
        env = dict(
            INSTAGRAM_VERIFY_TOKEN="loop-verify",
            INSTAGRAM_APP_SECRET=SECRET,
            INSTAGRAM_ACCESS_TOKEN="loop-token",
            INSTAGRAM_GRAPH_URL=graph.base_url,
            LOOP_CENSUS_FILE=str(census),
        )
        with running_stack(database_url, tmp_path, **env) as stack:
            assert clinic_command(database_url, ["init"]) == 0
            stack.start_action_server()
            url = stack.start_rasa(
                credentials=ROOT / "credentials.yml",
                api=False,
                ready_path="/webhooks/instagram/",
                launcher=(str(BIN / "python"), "-m", "tests.loop_census"),
            )
            assert post_delivery(url, delivery("IG_TEST_LOOP", "hi"), SECRET) == 200
            graph.wait_for(1, timeout=120)  # a turn ran, and its reply went out
            server = next(p for p in stack.processes if p.name.startswith("rasa-"))
            os.kill(server.popen.pid, signal.SIGUSR1)
            assert wait_until(census.exists, 30), server.log()[-2000:]
            assert wait_until(lambda: census.stat().st_size > 0, 30)
    report = json.loads(census.read_text())
    assert report["running_loops"] == 1, report
