"""Erasure without exceptions, durable: the marker of a "delete my data" is honoured by the
retention job when the turn that asked died; audit rows forget the patient; the answer's
outbox row goes once settled; Rasa's lock keys go; SQLite deletes for good and is private."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from rasa.core.lock_store import RedisLockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import or_, select, text

from clinic.application import ClinicApp
from clinic.audit import hash_id
from clinic.booking import book
from clinic.db import create_database_engine, transaction
from clinic.delivery import Inbox, NewMessage, Outbox
from clinic.erasure_markers import marked
from clinic.models import AuditEvent, OutboxMessage
from clinic.retention import purge
from connectors.erasures import Erasures
from connectors.lock_keys import LockKeys, key_prefix
from connectors.stores import ErasingTrackerStore, sql_tracker_store
from tests.factories import add_doctor, add_patient
from tests.redis_support import REDIS_URL

LEASE = timedelta(seconds=15)


@pytest.fixture
def people() -> tuple[str, str]:
    """The erased sender and another, this test's own: Rasa's `events` table outlives a
    test on PostgreSQL."""
    run = uuid.uuid4().hex[:8]
    return f"IG_TEST_ERASED_{run}", f"IG_TEST_KEPT_{run}"


@pytest.fixture
def tracker_store(any_clinic, people) -> Iterator[SQLTrackerStore]:
    """Rasa's SQL tracker store in the clinic's database; this test's conversations are
    deleted afterwards (other tests read the whole table)."""
    store = sql_tracker_store(any_clinic.settings.database_url, Domain.empty())
    yield store
    with store.engine.begin() as connection:
        query = text("DELETE FROM events WHERE sender_id IN (:a, :b)")
        connection.execute(query, {"a": people[0], "b": people[1]})
    store.engine.dispose()


@pytest.fixture
def locks() -> Iterator[LockKeys]:
    """Rasa's lock keys under a prefix of this test's own."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = LockKeys(client, key_prefix(f"erasure{uuid.uuid4().hex[:8]}"))
    yield keys
    for key in client.scan_iter(match=f"{keys.prefix}*"):
        client.delete(key)


def plant_lock(locks: LockKeys, sender_id: str, expires: float) -> None:
    """A lock key as Rasa's RedisLockStore leaves it when a turn's process is killed."""
    ticket = json.dumps({"number": 0, "expires": expires})
    value = json.dumps({"conversation_id": sender_id, "tickets": [ticket]})
    locks.client.set(locks.prefix + sender_id, value)


def save_conversation(store, sender_id: str, *texts: str) -> None:
    tracker = DialogueStateTracker(sender_id, [])
    for words in texts:
        tracker.update(UserUttered(words, timestamp=time.time()))
    asyncio.run(store.save(tracker))


def events_of(engine, sender_id: str) -> int:
    with engine.connect() as connection:
        query = text("SELECT count(*) FROM events WHERE sender_id = :s")
        return connection.execute(query, {"s": sender_id}).scalar()


def naming(any_clinic, patient_id: int | None, hashed: str) -> list[str]:
    """The audit rows that still name the patient or their hash."""
    with transaction(any_clinic.engine) as session:
        return list(
            session.scalars(
                select(AuditEvent.name).where(
                    or_(AuditEvent.patient_id == patient_id, AuditEvent.recipient_hash == hashed)
                )
            )
        )


def test_purge_finishes_an_erasure_whose_turn_died(any_clinic, locks, clock, people, tracker_store):
    """The action erased the patient and recorded the marker; the rasa server died before
    it deleted the conversation. The retention job finds the sender by their keyed hash
    (the marker keeps no id) and converges on nothing left; others keep theirs."""
    sender, other = people
    engine, key, store = any_clinic.engine, any_clinic.settings.id_hash_key, tracker_store
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic, sender)
    start = datetime.combine(date(2026, 2, 5), clock_time(9), ZoneInfo("America/New_York"))
    book(any_clinic, doctor, patient.id, start)
    ClinicApp(any_clinic).request_handoff(sender)
    save_conversation(store, sender, "I have had chest pain for two weeks", "delete my data")
    save_conversation(store, other, "hi")
    plant_lock(locks, sender, time.time() - 3600)
    plant_lock(locks, other, time.time() + 600)
    inbox = Inbox(engine, "r", LEASE, key, clock)
    (waiting,) = inbox.accept([NewMessage("m.yes", sender, 1, "text", "yes")], 1).claimed

    erased = ClinicApp(any_clinic).erase_patient(sender)  # the turn dies after this

    assert erased.details and len(erased.cancelled) == 1
    hashed = hash_id(sender, key)
    assert naming(any_clinic, patient.id, hashed) == []
    assert purge(any_clinic, engine, locks).erasures == 0  # its message is still on its way
    assert events_of(engine, sender) == 0
    assert locks.senders() == {other}
    inbox.finish(waiting)  # the retried turn ends
    save_conversation(store, sender, "yes")  # (a save that did not honour the marker)

    assert purge(any_clinic, engine, locks).erasures == 1

    assert events_of(engine, sender) == 0 and events_of(engine, other) == 1
    with transaction(engine) as session:
        assert marked(session) == []
    assert naming(any_clinic, patient.id, hashed) == []


def test_the_answer_to_delete_my_data_goes_once_sent_and_completes_the_erasure(
    any_clinic, clock, people
):
    sender, other = people
    engine, key = any_clinic.engine, any_clinic.settings.id_hash_key
    outbox = Outbox(engine, "r", LEASE, key, clock)
    failed = outbox.add(sender, "m.old", 0, {"text": "a reply Graph refused"})
    outbox.failed(failed, "refused")
    app = ClinicApp(any_clinic)
    assert app.erase_patient(sender).details is False  # never a patient: a conversation
    answer = outbox.add(sender, "m.yes", 0, {"text": "Done: I've deleted our conversation."})
    kept = outbox.add(other, "m.other", 0, {"text": "Hi!"})
    with transaction(engine) as session:
        assert marked(session) == [hash_id(sender, key)]

    outbox.sent(answer, sender, "mid.answer")
    outbox.sent(kept, other, "mid.other")

    with transaction(engine) as session:
        recipients = list(session.scalars(select(OutboxMessage.recipient_id)))
        assert marked(session) == []
    assert recipients == [hash_id(other, key)]
    assert app.erase_patient(sender).details is False  # a new request starts afresh


def test_the_rasa_server_erases_a_marked_conversation_with_its_lock_keys(
    any_clinic, locks, people, tracker_store
):
    sender, other = people
    key, inner = any_clinic.settings.id_hash_key, tracker_store
    store = ErasingTrackerStore(inner, Erasures(any_clinic.engine, key, locks))
    save_conversation(store, sender, "I have had chest pain for two weeks")
    save_conversation(store, other, "hi")
    plant_lock(locks, sender, time.time() + 600)
    ClinicApp(any_clinic).erase_patient(sender)

    save_conversation(store, sender, "yes")  # a retried turn: no erase slot, the marker

    assert events_of(inner.engine, sender) == 0 and events_of(inner.engine, other) == 1
    assert locks.senders() == set()
    with transaction(any_clinic.engine) as session:
        assert marked(session) == []
    save_conversation(store, sender, "hi again")  # a new conversation is kept
    assert events_of(inner.engine, sender) == 1


def test_purge_removes_lock_keys_left_longer_than_the_retention(locks):
    now = time.time()
    plant_lock(locks, "IG_TEST_OLD", now - 31 * 86400)
    plant_lock(locks, "IG_TEST_RECENT", now - 3600)
    plant_lock(locks, "IG_TEST_LIVE", now + 15)
    locks.client.set(locks.prefix + "IG_TEST_ODD", b"not Rasa's shape")

    assert locks.remove_stale(now - 30 * 86400) == 1

    assert locks.senders() == {"IG_TEST_RECENT", "IG_TEST_LIVE", "IG_TEST_ODD"}


@pytest.mark.parametrize("prefix", [None, "clinic1", "not-alnum"])
def test_lock_keys_are_named_as_rasa_names_them(prefix):
    assert key_prefix(prefix) == RedisLockStore(key_prefix=prefix).key_prefix


def test_sqlite_overwrites_what_it_deletes_on_every_connection(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
    store = sql_tracker_store(f"sqlite:///{tmp_path / 'tracker.db'}", Domain.empty())
    try:
        for each in (engine, store.engine):
            with each.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    finally:
        engine.dispose()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_sqlite_database_and_its_folder_are_its_owners_only(tmp_path):
    previous = os.umask(0o022)  # what most shells have: files readable by everyone
    try:
        folder = tmp_path / "var"
        engine = create_database_engine(f"sqlite:///{folder / 'clinic.db'}")
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
            connection.exec_driver_sql("INSERT INTO t VALUES ('PATIENT_TEST')")
        files = [folder / name for name in ("clinic.db", "clinic.db-wal", "clinic.db-shm")]
        assert _mode(folder) == 0o700
        assert {file.name: _mode(file) for file in files} == {f.name: 0o600 for f in files}
        engine.dispose()
        old = tmp_path / "old.db"  # a database made before this release
        old.touch(mode=0o644)
        create_database_engine(f"sqlite:///{old}").dispose()
        assert _mode(old) == 0o600
    finally:
        os.umask(previous)


def test_a_second_engine_on_an_open_database_keeps_sqlite_s_locks(tmp_path):
    """POSIX locks belong to the process and go when any of its descriptors of the file is
    closed: opening the file to make it private must not run while SQLite holds it, or
    another process takes itself for the last one and deletes the write-ahead log under
    our connections, which then read a database of their own."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    first = create_database_engine(url)
    try:
        with first.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        held = first.connect()  # a pooled connection, as the rasa server keeps them
        held.exec_driver_sql("SELECT count(*) FROM t").all()
        create_database_engine(url).dispose()  # a second part of the process opens its own
        writer = (
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1])\n"
            "db.execute('PRAGMA journal_mode = WAL')\n"
            "db.execute('INSERT INTO t VALUES (1)')\n"
            "db.commit()\n"
            "db.close()\n"
        )
        subprocess.run(  # noqa: S603 - another process, as the console or a CLI is
            [sys.executable, "-c", writer, str(tmp_path / "clinic.db")], check=True
        )
        assert (tmp_path / "clinic.db-wal").exists()
        assert held.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        held.close()
    finally:
        first.dispose()
