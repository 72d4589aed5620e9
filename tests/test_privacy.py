"""Only the patient reaches their data, and "delete my data" deletes it: real servers on
PostgreSQL (the clinic's database and Rasa's SQL tracker store) with Redis, the Instagram
channel and the fake Graph API, every server logging at DEBUG."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import MetaData, Table, inspect, select, text

from clinic.application import ClinicApp
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.models import Appointment, InboxMessage, OutboxMessage, Patient
from clinic.settings import Settings
from connectors.fake_graph import FakeGraphApi
from tests.databases import temporary_postgres_database
from tests.helpers import wait_until
from tests.instagram_patient import InstagramPatient
from tests.redis_support import REDIS_URL
from tests.servers import ROOT, Stack, action_call, running_stack, scaled_out_environment

SECRET = "privacy-app-secret"
CREDENTIALS = f"""
connectors.instagram.InstagramInput:
  verify_token: privacy-verify
  app_secret: {SECRET}
  access_token: privacy-token
"""


@dataclass
class Person:
    instagram_id: str  # numeric, like a real Instagram-scoped id
    name: str
    phone_typed: str
    phone_forms: tuple[str, ...]  # every way the number could show up

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.instagram_id, self.name, *self.phone_forms)


ERASED = Person(
    "17841400008475512",
    "PATIENT_TEST",
    "202 555 0143",
    ("202 555 0143", "2025550143", "+12025550143"),
)
KEPT = Person(
    "17841400008475599",
    "PATIENT_KEEP",
    "+1 202 555 0199",
    ("202 555 0199", "2025550199", "+12025550199"),
)


@dataclass
class World:
    stack: Stack
    graph: FakeGraphApi
    database_url: str
    rasa_url: str
    action_url: str

    def patient(self, person: Person) -> InstagramPatient:
        return InstagramPatient(self.rasa_url, self.graph, person.instagram_id, SECRET)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    log_dir = tmp_path_factory.mktemp("privacy")
    credentials = log_dir / "credentials.yml"
    credentials.write_text(CREDENTIALS)
    with temporary_postgres_database() as database_url, FakeGraphApi() as graph:
        env = scaled_out_environment(database_url, graph.base_url, uuid.uuid4().hex[:8])
        env.update(ID_HASH_KEY="privacy-test-key", LOG_LEVEL="DEBUG")
        with running_stack(database_url, log_dir, **env) as stack:
            subprocess.run(
                [sys.executable, "-m", "clinic", "seed", "--demo"],
                cwd=ROOT,
                env=stack.env,
                capture_output=True,
                check=True,
            )
            action_url = stack.start_action_server()
            rasa_url = stack.start_rasa(credentials, None, False, "/webhooks/instagram/")
            yield World(stack, graph, database_url, rasa_url, action_url)


def book(patient: InstagramPatient, person: Person, new: bool) -> str:
    if new:
        (consent,) = patient.say("I'd like to book an appointment")
        patient.tap(consent, 1)  # yes: the name question
        patient.say(person.name)  # the phone question
        (days,) = patient.say(person.phone_typed)
    else:
        (days,) = patient.say("book an appointment")
    (slots,) = patient.tap(days, 1)
    (confirmation,) = patient.tap(slots, 1)
    assert confirmation["text"].startswith("Your appointment is confirmed")
    return confirmation["text"]


@pytest.fixture(scope="module")
def erased(world: World) -> World:
    """The kept patient books; the erased one books, cancels, books again, deletes."""
    book(world.patient(KEPT), KEPT, new=True)
    patient = world.patient(ERASED)
    patient.say("hi")
    book(patient, ERASED, new=True)
    (question,) = patient.say("cancel my appointment")
    (cancelled,) = patient.tap(question, 1)
    assert cancelled["text"].startswith("Done: your appointment on")
    book(patient, ERASED, new=False)
    (question,) = patient.say("delete my data")
    (deleted,) = patient.tap(question, 1)
    assert deleted["text"].startswith("Done: I've deleted your name, phone number")
    engine = create_database_engine(world.database_url)
    try:
        # The last turn ends (Rasa deletes the conversation as it would save it, after the
        # answer is out) and its answers settle: the outbox keeps only hashes once sent.
        assert wait_until(lambda: _pending(engine) == 0, 30)
    finally:
        engine.dispose()
    return world


def _pending(engine) -> int:
    """Messages whose turn has not ended, and replies not sent yet."""
    with transaction(engine) as session:
        return sum(
            len(session.scalars(select(model.id).where(model.status == "pending")).all())
            for model in (InboxMessage, OutboxMessage)
        )


def _all_rows(database_url: str) -> dict[str, str]:
    """Every table of the database, every row, as text."""
    engine = create_database_engine(database_url)
    try:
        dumps = {}
        with engine.connect() as connection:
            for name in inspect(connection).get_table_names():
                table = Table(name, MetaData(), autoload_with=connection)
                rows = connection.execute(select(table)).all()
                dumps[name] = json.dumps([[str(v) for v in row] for row in rows])
        return dumps
    finally:
        engine.dispose()


def test_deleting_ones_data_leaves_no_trace_of_it_and_touches_no_one_else(erased: World):
    engine = create_database_engine(erased.database_url)
    try:
        with engine.connect() as connection:
            events = dict(
                connection.execute(
                    text("SELECT sender_id, count(*) FROM events GROUP BY sender_id")
                ).all()
            )
        with transaction(engine) as session:
            patients = session.scalars(select(Patient)).all()
            kept_bookings = session.scalars(
                select(Appointment).where(
                    Appointment.patient_id == patients[0].id, Appointment.status == "booked"
                )
            ).all()
    finally:
        engine.dispose()
    assert ERASED.instagram_id not in events  # the conversation is gone from Rasa's store
    assert events[KEPT.instagram_id] > 10  # the other one is whole
    assert [p.instagram_id for p in patients] == [KEPT.instagram_id]
    assert len(kept_bookings) == 1
    quoting = {
        table: [s for s in ERASED.secrets if s in dump]
        for table, dump in _all_rows(erased.database_url).items()
        if any(s in dump for s in ERASED.secrets)
    }
    assert quoting == {}
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{ERASED.instagram_id}*")
    assert keys == []


def test_debug_logs_of_both_servers_hold_no_name_phone_or_instagram_id(erased: World):
    logs = erased.stack.logs()
    assert "DEBUG" in logs  # the servers did log at DEBUG
    found = [s for person in (ERASED, KEPT) for s in person.secrets if s in logs]
    assert found == []


def _call_action(url: str, token: str | None) -> int:
    body = action_call("IG_TEST_INTRUDER")
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{url}/webhook", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_only_the_rasa_server_may_call_actions(world: World):
    token = world.stack.env["ACTION_SERVER_TOKEN"]
    assert _call_action(world.action_url, None) == 401
    assert _call_action(world.action_url, "not-the-secret") == 401
    assert _call_action(world.action_url, token) == 200


@pytest.mark.parametrize(
    ("missing", "env"),
    [
        ("ID_HASH_KEY", {"ACTION_SERVER_TOKEN": "a-secret"}),
        (
            "ID_HASH_KEY",
            {"ACTION_SERVER_TOKEN": "a-secret", "ID_HASH_KEY": "clinic-dm-development-key"},
        ),
        ("ACTION_SERVER_TOKEN", {"ID_HASH_KEY": "a-key"}),
    ],
    ids=["no-hash-key", "development-hash-key", "no-action-server-token"],
)
def test_make_serve_refuses_to_start_without_its_secrets(missing, env):
    clean = {k: v for k, v in os.environ.items() if k not in {"ID_HASH_KEY", "ACTION_SERVER_TOKEN"}}
    result = subprocess.run(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert missing in result.stderr


# --- what DEBUG logs hold of a returning patient ------------------------------------------

# Booked before these servers started: they never saw her name or phone in a message.
PATRICIA = Person(
    "IG_TEST_8842016633",
    "Patricia Testcase",
    "+1 202 555 0143",
    ("(202) 555-0143", "202-555-0143", "202 555 0143", "2025550143", "+12025550143"),
)
# Types his name in lower case; "Al" is a first name of two letters.
AL = Person(
    "IG_TEST_8842016677",
    "al testcase",
    "202 555 0177",
    ("(202) 555-0177", "202-555-0177", "202 555 0177", "2025550177", "+12025550177"),
)


def test_debug_logs_hold_no_trace_of_returning_patients_or_of_what_the_bot_said(world: World):
    """Greetings by first name, bookings and an erasure, with both servers at DEBUG: the
    logs hold no name (in any case; a short first name as a word), phone form, sender id,
    or text the bot sent."""
    clinic = Clinic(create_database_engine(world.database_url), Settings(world.database_url))
    ClinicApp(clinic).grant_consent(PATRICIA.instagram_id)
    ClinicApp(clinic).save_details(PATRICIA.instagram_id, PATRICIA.name, PATRICIA.phone_typed)
    al = world.patient(AL)
    book(al, AL, new=True)
    (greeting,) = al.say("hello")
    assert greeting["text"].startswith("Welcome back, al!")
    patricia = world.patient(PATRICIA)
    (greeting,) = patricia.say("hi")
    assert greeting["text"].startswith("Welcome back, Patricia!")
    book(patricia, PATRICIA, new=False)
    (question,) = patricia.say("delete my data")
    (deleted,) = patricia.tap(question, 1)
    assert deleted["text"].startswith("Done: I've deleted your name, phone number")
    try:
        assert wait_until(lambda: _pending(clinic.engine) == 0, 30)
    finally:
        clinic.engine.dispose()

    logs = world.stack.logs()
    assert "DEBUG" in logs and "BotUttered(" in logs  # the servers did log the bot's turns
    secrets = [*PATRICIA.secrets, "Patricia", *AL.secrets, "Al"]
    assert [s for s in secrets if re.search(_anywhere(s), logs, re.IGNORECASE)] == []
    said = [m["text"] for p in (al, patricia) for m in p.messages()]
    assert len(said) == 13  # 7 for Al, 6 for Patricia: each reply once
    assert [text for text in said if text in logs] == []


def _anywhere(secret: str) -> str:
    """A secret inside any text; one of three letters or fewer (a first name) as a word."""
    return re.escape(secret) if len(secret) > 3 else rf"(?<!\w){re.escape(secret)}(?!\w)"
