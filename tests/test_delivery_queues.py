"""The inbox and outbox tell their callers when another item of the same patient waits, so
the channel claims again only then; the intake reads a patient's open hand-off with the claim.
On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from clinic.db import create_database_engine, transaction
from clinic.delivery import Inbox, InboxFull, NewMessage, Outbox
from clinic.handoffs import hand_off
from clinic.patients import find_patient
from tests.factories import add_patient

LEASE = timedelta(seconds=15)
PATIENT, OTHER, THIRD = "IG_TEST_1", "IG_TEST_2", "IG_TEST_3"


def message(mid: str, sender: str, at_ms: int) -> NewMessage:
    return NewMessage(mid, sender, at_ms, "text", "hi")


def test_finishing_a_message_says_whether_the_patients_next_one_waits(database_url, clock):
    engine = create_database_engine(database_url)
    inbox = Inbox(engine, "replica-1", LEASE, "k", clock)
    first = inbox.accept([message("m.1", PATIENT, 1)], claim_up_to=1).claimed[0]
    inbox.accept([message("m.2", PATIENT, 2), message("m.3", OTHER, 3)], claim_up_to=0)

    assert inbox.finish(first) is True  # m.2 waits for the same patient
    second = inbox.claim(5, inbox.ids_of(["m.2"]))[0]
    assert second.mid == "m.2"
    assert inbox.finish(second) is False  # only another patient's message waits
    engine.dispose()


def test_marking_a_reply_sent_says_whether_another_to_the_patient_waits(database_url, clock):
    engine = create_database_engine(database_url)
    outbox = Outbox(engine, "replica-1", LEASE, "k", clock)
    first = outbox.add(PATIENT, "m.1", 0, {"text": "one"})
    assert outbox.add(PATIENT, "m.1", 1, {"text": "two"}) is None  # waits behind the first
    outbox.add(OTHER, "m.9", 0, {"text": "someone else's"})

    assert outbox.sent(first, PATIENT, "graph.1") is True
    [second] = outbox.claim(1, None, PATIENT)
    assert second.body == {"text": "two"}
    assert outbox.sent(second.id, PATIENT, "graph.2") is False
    engine.dispose()


def test_a_message_claimed_at_intake_carries_whether_its_patient_is_with_staff(database_url, clock):
    engine = create_database_engine(database_url)
    inbox = Inbox(engine, "replica-1", LEASE, "k", clock)
    with transaction(engine) as session:
        hand_off(session, OTHER, "hash-of-other", clock())

    claimed = inbox.accept(
        [message("m.1", PATIENT, 1), message("m.2", OTHER, 2)], claim_up_to=2
    ).claimed

    assert {item.mid: item.handoff_open for item in claimed} == {"m.1": False, "m.2": True}
    # Claimed later, by a worker: read the same way.
    inbox.accept([message("m.3", OTHER, 3), message("m.4", PATIENT, 4)], claim_up_to=0)
    for item in claimed:
        inbox.finish(item)
    assert {item.mid: item.handoff_open for item in inbox.claim(5)} == {"m.3": True, "m.4": False}
    engine.dispose()


def test_a_new_message_does_not_jump_the_line_of_those_waiting_for_a_worker(database_url, clock):
    engine = create_database_engine(database_url)
    inbox = Inbox(engine, "replica-1", LEASE, "k", clock)
    inbox.accept([message("m.1", PATIENT, 1)], claim_up_to=0)  # no room when it came

    late = inbox.accept([message("m.2", OTHER, 2)], claim_up_to=1)

    assert late.new == ["m.2"] and late.claimed == []
    assert [item.mid for item in inbox.claim(1)] == ["m.1"]  # first come, first served
    assert [item.mid for item in inbox.claim(1)] == ["m.2"]
    engine.dispose()


def test_a_batch_of_deliveries_is_stored_as_one_in_the_order_written(any_clinic, clock):
    """A delivery of several messages is stored in one call, in the order written."""
    add_patient(any_clinic, PATIENT)
    add_patient(any_clinic, OTHER)
    inbox = Inbox(any_clinic.engine, "replica-1", LEASE, "k", clock)
    # Stored and answered before: in the batch, a redelivery.
    inbox.finish(inbox.accept([message("m.0", THIRD, 0)], claim_up_to=1).claimed[0])

    accepted = inbox.accept(
        [
            message("m.3", PATIENT, 3),
            message("m.1", PATIENT, 1),
            message("m.0", THIRD, 0),
            message("m.2", OTHER, 2),
            message("m.2", OTHER, 2),  # the same delivery twice in one batch
            message("m.4", THIRD, 4),
        ],
        claim_up_to=5,
    )

    assert accepted.new == ["m.1", "m.2", "m.3", "m.4"]
    # One claim per patient, and none once an older message waits unclaimed: PATIENT's
    # second message waits for the first, so THIRD's new one waits in line behind it.
    assert [item.mid for item in accepted.claimed] == ["m.1", "m.2"]
    assert inbox.pending() == 4
    # Each known patient's last message is the latest one they sent in the batch.
    seen = {p: find_patient(any_clinic, p).last_message_at for p in (PATIENT, OTHER)}
    assert seen == {PATIENT: _at(3), OTHER: _at(2)}


def test_a_batch_beyond_the_bound_stores_none_of_its_messages(any_clinic, clock):
    inbox = Inbox(any_clinic.engine, "replica-1", LEASE, "k", clock, max_pending=3)
    inbox.accept([message("m.1", PATIENT, 1)], claim_up_to=0)

    with pytest.raises(InboxFull):
        inbox.accept([message(f"m.{n}", OTHER, n) for n in (2, 3, 4)], claim_up_to=0)

    assert inbox.pending() == 1
    # Redeliveries of what is stored take no room: they are not new.
    assert inbox.accept([message("m.1", PATIENT, 1)] * 5, claim_up_to=0).new == []


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def test_a_batch_takes_as_many_statements_as_one_message(database_url, clock):
    """So a delivery of twenty messages costs about what one message does."""
    engine = create_database_engine(database_url)
    inbox = Inbox(engine, "replica-1", LEASE, "k", clock)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    inbox.accept([message("m.1", PATIENT, 1)], claim_up_to=1)
    one = len(statements)
    statements.clear()
    inbox.accept([message(f"m.{n}", f"IG_TEST_{n}", n) for n in range(2, 22)], claim_up_to=5)

    assert len(statements) == one
    engine.dispose()


def test_a_batch_larger_than_one_statement_takes_is_stored_whole(database_url, clock):
    """SQLite before 3.32 takes at most 999 parameters in a statement, so a big batch is
    stored in parts: all of it, in the order written, claims counted across the parts."""
    engine = create_database_engine(database_url)
    inbox = Inbox(engine, "replica-1", LEASE, "k", clock, max_pending=2000)
    batch = [message(f"m.{n}", f"IG_TEST_{n % 700}", n) for n in range(1, 1001)]

    accepted = inbox.accept(batch, claim_up_to=3)

    assert accepted.new == [m.mid for m in batch]
    assert [item.mid for item in accepted.claimed] == ["m.1", "m.2", "m.3"]
    assert inbox.pending() == 1000
    assert inbox.accept(batch, claim_up_to=3).new == []  # redelivered whole: all known
    engine.dispose()
