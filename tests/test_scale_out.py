"""Two rasa replicas and two action servers on one PostgreSQL database and one Redis:
conversations move between replicas, races and redeliveries stay single, faults are
survived. Real servers throughout; the database outage goes through a TCP proxy."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.models import Appointment
from clinic.settings import Settings
from connectors.fake_graph import FakeGraphApi
from connectors.simulate import delivery, post_delivery
from tests.databases import temporary_postgres_database
from tests.factories import add_doctor, add_patient
from tests.helpers import wait_until
from tests.servers import Stack, running_stack, say, scaled_out_environment, texts
from tests.tcp_proxy import TcpProxy

SECRET = "scale-app-secret"
CREDENTIALS = f"""
rest:
connectors.instagram.InstagramInput:
  verify_token: scale-verify
  app_secret: {SECRET}
  access_token: scale-token
"""


class Cluster:
    def __init__(self, stack: Stack, graph: FakeGraphApi, clinic: Clinic, proxy: TcpProxy):
        self.stack, self.graph, self.clinic, self.proxy = stack, graph, clinic, proxy
        self.replicas: list[str] = []
        self.action_urls: list[str] = []
        self.credentials = stack.log_dir / "credentials.yml"
        self.credentials.write_text(CREDENTIALS)
        today = clinic.now().astimezone(clinic.settings.zone).date()
        self.day = today + timedelta(days=2)  # the doctor works every day

    def start_replica(self, action_url: str, port: int | None = None) -> str:
        return self.stack.start_rasa(
            self.credentials,
            port,
            False,
            "/webhooks/instagram/",
            ACTION_SERVER_URL=f"{action_url}/webhook",
        )

    def patient(self) -> str:
        sender = f"IG_TEST_{uuid.uuid4().hex[:8]}"
        add_patient(self.clinic, sender)  # a returning patient: straight to day and time
        return sender

    def booked(self, sender: str | None = None) -> int:
        from clinic.models import Patient

        query = select(func.count()).select_from(Appointment).where(Appointment.status == "booked")
        if sender is not None:
            query = query.join(Patient).where(Patient.instagram_id == sender)
        with transaction(self.clinic.engine) as session:
            return session.scalar(query)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    log_dir = tmp_path_factory.mktemp("cluster")
    prefix = uuid.uuid4().hex[:8]
    with temporary_postgres_database() as database_url, FakeGraphApi() as graph:
        direct = make_url(database_url)
        proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
        proxied = direct.set(host="127.0.0.1", port=proxy.port)
        clinic = Clinic(create_database_engine(database_url), Settings(database_url=database_url))
        add_doctor(clinic, hours={d: [(time(9), time(17))] for d in range(7)})
        env = scaled_out_environment(database_url, graph.base_url, f"test-{prefix}")
        proxied_url = proxied.render_as_string(hide_password=False)
        with running_stack(proxied_url, log_dir, **env) as stack:
            cluster = Cluster(stack, graph, clinic, proxy)
            cluster.action_urls = [stack.start_action_server(), stack.start_action_server()]
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                cluster.replicas = list(pool.map(cluster.start_replica, cluster.action_urls))
            yield cluster
        clinic.engine.dispose()


def book_for(cluster: Cluster, replica: str, sender: str) -> str:
    weekday = cluster.day.strftime("%A").lower()  # "thursday": the day after tomorrow
    return texts(say(replica, sender, f"can I book an appointment on {weekday}?"))


def test_a_conversation_alternating_between_replicas_stays_coherent(cluster):
    first, second = cluster.replicas
    sender = cluster.patient()
    assert "Here are the available times for" in book_for(cluster, first, sender)
    confirmation = texts(say(second, sender, "1"))
    assert confirmation.startswith("Your appointment is confirmed for")
    shown = texts(say(first, sender, "when is my appointment"))
    assert shown.startswith("Your appointment is on")
    assert cluster.booked(sender) == 1


def test_two_patients_racing_through_different_replicas_get_one_booking(cluster):
    first, second = cluster.replicas
    one, two = cluster.patient(), cluster.patient()
    lists = [book_for(cluster, first, one), book_for(cluster, second, two)]
    assert lists[0].split("\n")[1] == lists[1].split("\n")[1]  # the same first slot
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda pair: texts(say(*pair, "1")), [(first, one), (second, two)]))
    confirmed = [a for a in answers if a.startswith("Your appointment is confirmed")]
    taken = [a for a in answers if a.startswith("That slot was just taken.")]
    assert (len(confirmed), len(taken)) == (1, 1), answers
    assert cluster.booked(one) + cluster.booked(two) == 1


def test_the_same_webhook_delivered_to_both_replicas_is_processed_once(cluster):
    sender = f"IG_TEST_{uuid.uuid4().hex[:8]}"
    body = delivery(sender, "hi")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(lambda url: post_delivery(url, body, SECRET), cluster.replicas))
    assert statuses == [200, 200]
    assert wait_until(lambda: len(cluster.graph.messages_to(sender)) >= 1, 60)
    assert not wait_until(lambda: len(cluster.graph.messages_to(sender)) > 1, 5)


def test_a_database_outage_during_booking_books_nothing_then_recovers(cluster):
    _, second = cluster.replicas
    sender = cluster.patient()
    assert "Here are the available times for" in book_for(cluster, second, sender)
    cluster.proxy.down()
    try:
        answer = texts(say(second, sender, "1"))
    finally:
        cluster.proxy.up()
    assert answer == (
        "Sorry, I can't reach the booking system right now. Please try again in a few minutes."
    )
    assert cluster.booked(sender) == 0
    assert "Here are the available times for" in book_for(cluster, second, sender)
    assert texts(say(second, sender, "1")).startswith("Your appointment is confirmed")
    assert cluster.booked(sender) == 1


def test_graph_api_down_for_30_seconds_delays_replies_without_losing_or_repeating(cluster):
    sender = f"IG_TEST_{uuid.uuid4().hex[:8]}"
    cluster.graph.down_for(30)
    for text in ("hi", "are you a bot?"):
        assert post_delivery(cluster.replicas[0], delivery(sender, text), SECRET) == 200
    assert not wait_until(lambda: cluster.graph.messages_to(sender), 25)
    assert wait_until(lambda: len(cluster.graph.messages_to(sender)) >= 2, 120)
    assert not wait_until(lambda: len(cluster.graph.messages_to(sender)) > 2, 3)
    first, second = (m["message"]["text"] for m in cluster.graph.messages_to(sender))
    assert first.startswith("Hi! I'm the clinic's booking assistant.")
    assert second.startswith("I'm the clinic's booking assistant, a bot.")


def test_a_replica_killed_mid_conversation_is_continued_by_the_other(cluster):
    first, second = cluster.replicas
    sender = cluster.patient()
    assert "Here are the available times for" in book_for(cluster, first, sender)
    port = int(first.rsplit(":", 1)[1])
    victim = next(p for p in cluster.stack.processes if p.name == f"rasa-{port}")
    os.kill(victim.popen.pid, signal.SIGKILL)
    victim.popen.wait(timeout=10)
    assert texts(say(second, sender, "1")).startswith("Your appointment is confirmed")
    assert cluster.booked(sender) == 1
    # Bring the replica back, as an orchestrator would, for whatever runs next.
    cluster.stack.processes.remove(victim)
    cluster.start_replica(cluster.action_urls[0], port)
    assert "Here are the available times for" in book_for(cluster, first, cluster.patient())
