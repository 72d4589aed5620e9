"""Nothing acknowledged is lost: real rasa servers with the Instagram channel, the fake Graph
API, PostgreSQL (bookings, inbox, outbox, Rasa's tracker store) and Redis (Rasa's lock store),
as in production. Thirty patients write; right after Meta got its 200s the server is killed or
stopped; every patient is answered, exactly once.

Graph has no idempotency key: a reply it accepted a few milliseconds before a SIGKILL cannot be
told from one it did not, and is sent again (docs/delivery.md). So that every reply's fate is
known, the fake Graph API holds its answers back (503) until the server is gone; the replies
written meanwhile wait in the outbox, the messages not yet handled in the inbox.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clinic.db import create_database_engine, transaction
from clinic.models import InboxMessage, OutboxMessage
from connectors.fake_graph import FakeGraphApi
from connectors.simulate import delivery, post_delivery
from tests.databases import temporary_postgres_database
from tests.helpers import free_port, wait_until
from tests.servers import Stack, running_stack, scaled_out_environment

SECRET = "fault-app-secret"
CREDENTIALS = f"""
connectors.instagram.InstagramInput:
  verify_token: fault-verify
  app_secret: {SECRET}
  access_token: fault-token
"""
PATIENTS = 30
GREETING = "Hi! I'm the clinic's booking assistant."


class Servers:
    def __init__(self, stack: Stack, graph: FakeGraphApi, database_url: str, log_dir: Path):
        self.stack, self.graph, self.database_url = stack, graph, database_url
        self.credentials = log_dir / "credentials.yml"
        self.credentials.write_text(CREDENTIALS)

    def start_replica(self, port: int) -> str:
        # Two turns at a time: the burst is still being handled when the server goes.
        return self.stack.start_rasa(
            self.credentials, port, False, "/webhooks/instagram/", INSTAGRAM_MAX_CONCURRENCY="2"
        )

    def replica_process(self, url: str):
        port = int(url.rsplit(":", 1)[1])
        return next(p for p in reversed(self.stack.processes) if p.name == f"rasa-{port}")

    def work_left(self) -> int:
        """Messages waiting in the inbox and replies waiting in the outbox."""
        engine = create_database_engine(self.database_url)
        try:
            with transaction(engine) as session:
                return sum(
                    session.scalar(
                        select(func.count()).select_from(model).where(model.status == "pending")
                    )
                    for model in (InboxMessage, OutboxMessage)
                )
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    log_dir = tmp_path_factory.mktemp("faults")
    with temporary_postgres_database() as database_url, FakeGraphApi() as graph:
        env = scaled_out_environment(database_url, graph.base_url, f"fault-{uuid.uuid4().hex[:8]}")
        with running_stack(database_url, log_dir, INBOX_LEASE_SECONDS="10", **env) as stack:
            stack.start_action_server()
            yield Servers(stack, graph, database_url, log_dir)


def burst(url: str) -> list[str]:
    """Thirty new patients say hi at once; their ids, once every delivery got its 200."""
    senders = [f"IG_TEST_{uuid.uuid4().hex[:10]}" for _ in range(PATIENTS)]
    with concurrent.futures.ThreadPoolExecutor(PATIENTS) as pool:
        statuses = list(pool.map(lambda s: post_delivery(url, delivery(s, "hi"), SECRET), senders))
    assert statuses == [200] * PATIENTS
    return senders


def answered_exactly_once(graph: FakeGraphApi, senders: list[str], within: float) -> None:
    def replies(sender: str) -> list[str]:
        return [m["message"]["text"] for m in graph.messages_to(sender)]

    assert wait_until(lambda: all(replies(s) for s in senders), within), [
        len(replies(s)) for s in senders
    ]
    assert not wait_until(lambda: any(len(replies(s)) > 1 for s in senders), 5)
    for sender in senders:
        (reply,) = replies(sender)
        assert reply.startswith(GREETING)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_server_stopped_right_after_its_acks_answers_everyone_once_restarted(servers, sig):
    port = free_port()
    url = servers.start_replica(port)
    servers.graph.down_for(3600)
    senders = burst(url)
    process = servers.replica_process(url)
    os.kill(process.popen.pid, sig)
    process.popen.wait(timeout=60)
    assert servers.work_left() > 0  # the server went with work left
    servers.graph.down_for(0)
    url = servers.start_replica(port)
    answered_exactly_once(servers.graph, senders, within=90)
    servers.replica_process(url).stop()


def test_a_killed_replica_left_alone_is_covered_by_the_other_within_a_minute(servers):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first, second = pool.map(servers.start_replica, [free_port(), free_port()])
    servers.graph.down_for(3600)
    senders = burst(first)
    victim = servers.replica_process(first)
    os.kill(victim.popen.pid, signal.SIGKILL)
    victim.popen.wait(timeout=60)
    servers.graph.down_for(0)
    answered_exactly_once(servers.graph, senders, within=60)
    servers.replica_process(second).stop()
