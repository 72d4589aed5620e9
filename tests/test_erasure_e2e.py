"""Erasure without exceptions, durable, end to end: real rasa servers (the Instagram channel,
the fake Graph API), a real action server, Rasa's SQL tracker store and Redis lock store,
on SQLite and on PostgreSQL. A sender who never booked tells their story and erases it; a
patient's erasure whose rasa server is killed (SIGKILL) after the patient row is gone and
before the conversation is, is finished by the turn's rerun on the other replica, and
Meta's redelivery changes nothing. What is checked is read from the stores themselves."""

from __future__ import annotations

import random
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import or_, select, text

from clinic.audit import hash_id
from clinic.db import create_database_engine, transaction
from clinic.erasure_markers import marked
from clinic.faults import BEFORE_CONVERSATION_ERASED
from clinic.models import AuditEvent, InboxMessage, OutboxMessage, Patient
from connectors.fake_graph import FakeGraphApi
from connectors.lock_keys import key_prefix
from connectors.simulate import delivery, post_delivery
from tests.databases import temporary_postgres_database
from tests.helpers import wait_until
from tests.instagram_patient import InstagramPatient
from tests.redis_support import REDIS_URL
from tests.servers import Stack, clinic_command, running_stack, scaled_out_environment

SECRET = "erasure-app-secret"
HASH_KEY = "erasure-test-key"
CREDENTIALS = f"""
connectors.instagram.InstagramInput:
  verify_token: erasure-verify
  app_secret: {SECRET}
  access_token: erasure-token
"""
STORY = (
    "I have had chest pain and shortness of breath for two weeks",
    "what are your opening hours?",
    "my cardiologist thinks it is my heart and I take sertraline for anxiety",
)
WORDS = ("shortness of breath", "cardiologist", "sertraline")  # as they could be stored
NAME, PHONE_TYPED = "PATIENT_TEST", "202 555 0143"
# What the patient of the second test gave: their name and every form of their phone.
SECRETS = (NAME, PHONE_TYPED, "2025550143", "+12025550143")


@dataclass
class World:
    stack: Stack
    graph: FakeGraphApi
    database_url: str
    tracker_url: str
    lock_prefix: str
    replica: str  # the rasa server the patients write to
    faulty: str  # a second replica that dies where the conversation would be erased

    def patient(self, sender_id: str, url: str | None = None) -> InstagramPatient:
        return InstagramPatient(url or self.replica, self.graph, sender_id, SECRET)

    def settled(self) -> bool:
        """Every message handled and every reply sent."""
        with _engine(self.database_url) as engine, transaction(engine) as session:
            return not any(
                session.scalars(select(model.id).where(model.status == "pending")).first()
                for model in (InboxMessage, OutboxMessage)
            )

    def erasures_pending(self) -> list[str]:
        with _engine(self.database_url) as engine, transaction(engine) as session:
            return marked(session)

    def events_of(self, sender_id: str) -> int:
        """Rasa's tracker store, read directly: the conversation's events."""
        with _engine(self.tracker_url) as engine, engine.connect() as connection:
            query = text("SELECT count(*) FROM events WHERE sender_id = :sender")
            return connection.execute(query, {"sender": sender_id}).scalar()

    def sqlite_files_holding(self, secrets: tuple[str, ...]) -> dict[str, list[str]]:
        """SQLite: the files of both databases (the WAL included) that hold any of
        `secrets`, each with its mode when it is not the owner's only; nothing elsewhere."""
        if not self.database_url.startswith("sqlite"):
            return {}
        var = Path(self.database_url.removeprefix("sqlite:///")).parent
        found = {}
        for file in [var, *sorted(var.glob("*.db*"))]:
            held = [] if file.is_dir() else [s for s in secrets if s.encode() in file.read_bytes()]
            mode = file.stat().st_mode & 0o777
            if mode != (0o700 if file.is_dir() else 0o600):
                held.append(oct(mode))
            if held:
                found[file.name] = held
        return found

    def lock_keys_of(self, sender_id: str) -> list[bytes]:
        return redis.Redis.from_url(REDIS_URL).keys(f"*{sender_id}*")

    def traces_of(self, sender_id: str, patient_id: int | None = None) -> dict[str, int]:
        """Rows of the clinic's database that still name the sender, their keyed hash or
        their patient id: outbox, inbox, audit."""
        hashed = hash_id(sender_id, HASH_KEY)
        ids = [sender_id, hashed]
        with _engine(self.database_url) as engine, transaction(engine) as session:
            return {
                "outbox": len(
                    session.scalars(
                        select(OutboxMessage.id).where(OutboxMessage.recipient_id.in_(ids))
                    ).all()
                ),
                "inbox": len(
                    session.scalars(
                        select(InboxMessage.id).where(InboxMessage.sender_id.in_(ids))
                    ).all()
                ),
                "audit": len(
                    session.scalars(
                        select(AuditEvent.id).where(
                            or_(
                                AuditEvent.recipient_hash == hashed,
                                AuditEvent.patient_id == patient_id,
                            )
                        )
                    ).all()
                ),
            }


class _engine:
    """An engine for one look, disposed after it."""

    def __init__(self, url: str):
        self.engine = create_database_engine(url)

    def __enter__(self):
        return self.engine

    def __exit__(self, *_: object) -> None:
        self.engine.dispose()


def instagram_id() -> str:
    """A fresh numeric id, like a real Instagram-scoped id."""
    return f"178414{random.randrange(10**10, 10**11)}"  # noqa: S311 - not a secret


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"erasure-{request.param}")
    credentials = folder / "credentials.yml"
    credentials.write_text(CREDENTIALS)
    with _database(request.param, folder) as (database_url, tracker_url), FakeGraphApi() as graph:
        env = scaled_out_environment(database_url, graph.base_url, uuid.uuid4().hex[:8])
        env.update(TRACKER_STORE_URL=tracker_url, ID_HASH_KEY=HASH_KEY, INBOX_LEASE_SECONDS="5")
        with running_stack(database_url, folder, **env) as stack:
            assert clinic_command(database_url, ["seed", "--demo", "--if-empty"]) == 0
            stack.start_action_server()
            ready = "/webhooks/instagram/"
            replica = stack.start_rasa(credentials, None, False, ready)
            faulty = stack.start_rasa(
                credentials, None, False, ready, CLINIC_FAULT_POINT=BEFORE_CONVERSATION_ERASED
            )
            prefix = key_prefix(env["LOCK_STORE_KEY_PREFIX"])
            yield World(stack, graph, database_url, tracker_url, prefix, replica, faulty)


class _database:
    """The clinic's database and Rasa's tracker store: two SQLite files in a `var/` folder,
    or one PostgreSQL database."""

    def __init__(self, kind: str, folder: Path):
        self.kind, self.folder = kind, folder
        self._postgres = temporary_postgres_database() if kind == "postgres" else None

    def __enter__(self) -> tuple[str, str]:
        if self._postgres is not None:
            url = self._postgres.__enter__()
            return url, url
        var = self.folder / "var"
        url = f"sqlite:///{var / 'clinic.db'}"
        assert clinic_command(url, ["init"]) == 0
        return url, f"sqlite:///{var / 'tracker.db'}"

    def __exit__(self, *exc: object) -> None:
        if self._postgres is not None:
            self._postgres.__exit__(*exc)


def test_a_sender_who_never_booked_erases_their_story(world: World):
    sender = instagram_id()
    patient = world.patient(sender)
    patient.say("hi")
    for line in STORY:
        patient.say(line)
    assert wait_until(world.settled, 60)
    patient.read = len(patient.messages())
    assert world.events_of(sender) > 10  # the story is in the conversation
    (question,) = patient.say("delete my data")
    assert question["text"].startswith("This erases our conversation")

    (answer,) = patient.tap(question, 1)

    assert answer["text"] == "Done: I've deleted our conversation."
    assert wait_until(lambda: world.settled() and not world.erasures_pending(), 60)
    assert world.events_of(sender) == 0
    assert world.lock_keys_of(sender) == []
    assert world.traces_of(sender) == {"outbox": 0, "inbox": 0, "audit": 0}
    assert world.sqlite_files_holding(WORDS) == {}


def test_an_erasure_killed_halfway_is_finished_by_its_rerun_and_a_redelivery(world: World):
    sender = instagram_id()
    patient = world.patient(sender)
    (consent,) = patient.say("I'd like to book an appointment, my back hurts")
    patient.tap(consent, 1)  # yes: the name question
    patient.say(NAME)
    (days,) = patient.say(PHONE_TYPED)
    (slots,) = patient.tap(days, 1)
    (confirmation,) = patient.tap(slots, 1)
    assert confirmation["text"].startswith("Your appointment is confirmed")
    patient_id = _patient_id(world, sender)
    (question,) = patient.say("delete my data")
    assert question["text"].startswith("This erases your name and phone number")
    assert wait_until(world.settled, 60)
    yes = delivery(sender, question["quick_replies"][0]["title"], quick_reply_payload="/affirm")

    # The faulty replica takes the "yes" and dies where it would erase the conversation.
    assert post_delivery(world.faulty, yes, SECRET) == 200
    killed = world.stack.process(f"rasa-{world.faulty.rsplit(':', 1)[1]}").popen
    assert wait_until(lambda: killed.poll() is not None, 120)
    assert killed.returncode == -signal.SIGKILL
    assert _patient_id(world, sender) is None  # the patient row is gone...
    assert world.events_of(sender) > 10  # ...and the conversation is not
    assert world.erasures_pending() == [hash_id(sender, HASH_KEY)]

    # Meta redelivers; the other replica reruns the turn once the dead one's lease ran out.
    assert post_delivery(world.replica, yes, SECRET) == 200
    assert wait_until(lambda: len(patient.messages()) > patient.read, 120)
    (answer,) = patient.messages()[patient.read :]
    assert answer["text"].startswith("Done: I've deleted your name, phone number")
    assert wait_until(lambda: world.settled() and not world.erasures_pending(), 60)
    assert world.events_of(sender) == 0
    assert world.lock_keys_of(sender) == []
    assert world.traces_of(sender, patient_id) == {"outbox": 0, "inbox": 0, "audit": 0}
    assert world.sqlite_files_holding(SECRETS) == {}
    # A redelivery after the erasure finished starts nothing either.
    assert post_delivery(world.replica, yes, SECRET) == 200
    assert wait_until(world.settled, 30)
    assert world.events_of(sender) == 0


def _patient_id(world: World, sender_id: str) -> int | None:
    with _engine(world.database_url) as engine, transaction(engine) as session:
        return session.scalar(select(Patient.id).where(Patient.instagram_id == sender_id))
