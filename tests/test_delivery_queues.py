"""The inbox and outbox tell their callers when another item of the same patient waits, so
the channel claims again only then; the intake reads a patient's open hand-off with the claim.
On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from clinic.db import create_database_engine, transaction
from clinic.delivery import Inbox, NewMessage, Outbox
from clinic.handoffs import hand_off

LEASE = timedelta(seconds=15)
PATIENT, OTHER = "IG_TEST_1", "IG_TEST_2"


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
