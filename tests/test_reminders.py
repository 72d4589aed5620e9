"""Reminders with a frozen clock: put in the outbox once, sent by the outbox's sender like
any reply, their fate reported back; and the doctor's calendar parsed back."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from clinic.booking import book, cancel
from clinic.calendar_feed import doctor_calendar
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.delivery import Outbox
from clinic.models import AuditEvent, Notification, OutboxMessage, Patient
from clinic.patients import note_message
from clinic.reminders import RunReport, queue_due_reminders
from clinic.settings import Settings
from clinic.templates import format_when
from clinic.texting import INSTAGRAM, reminder_channel
from connectors.fake_graph import FakeGraphApi, FakeResponse
from connectors.graph_api import GraphApiClient
from connectors.graph_messages import text_messages
from connectors.outbox import OutboxSender
from tests.factories import add_block, add_doctor, add_patient

NEW_YORK = ZoneInfo("America/New_York")
THURSDAY = date(2026, 2, 5)


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=NEW_YORK)


def render(start: datetime, zone: ZoneInfo, channel: str = INSTAGRAM) -> str:
    return f"Reminder: you have an appointment on {format_when(start, zone)}."


@pytest.fixture
def graph():
    with FakeGraphApi() as fake:
        yield fake


def remind(clinic: Clinic, graph: FakeGraphApi) -> RunReport:
    """What `python -m clinic remind` runs: queue, then one pass of the outbox's sender."""
    key = clinic.settings.id_hash_key
    outbox = Outbox(clinic.engine, "remind-test", timedelta(seconds=15), key, clinic.now)
    client = GraphApiClient("token", base_url=graph.base_url)
    try:
        report = queue_due_reminders(clinic, outbox, render, text_messages)
        sender = OutboxSender(outbox, client, timedelta(minutes=3), key)
        while sender.poll():  # what `remind` runs after queuing
            pass
        return report
    finally:
        client.close()


def status_of(clinic: Clinic, appointment_id: int) -> str | None:
    with transaction(clinic.engine) as session:
        row = session.scalars(
            select(Notification).where(Notification.appointment_id == appointment_id)
        ).one_or_none()
        return row.status if row else None


def booked_for_thursday_9(clinic: Clinic, instagram_id: str = "IG_TEST_1"):
    doctor = add_doctor(clinic)
    patient = add_patient(clinic, instagram_id)
    appointment = book(clinic, doctor, patient.id, at(THURSDAY, 9))
    return patient, appointment


def test_not_due_yet_sends_nothing(any_clinic, clock, graph):
    booked_for_thursday_9(any_clinic)
    note_message(any_clinic, "IG_TEST_1")
    assert remind(any_clinic, graph).queued == 0  # Monday: 3 days early
    assert graph.sent == []


def test_due_and_window_open_is_sent_once_through_the_outbox_with_an_audit_row(
    any_clinic, clock, graph
):
    _, appointment = booked_for_thursday_9(any_clinic)
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)  # 20 h before: due (lead 24 h)
    note_message(any_clinic, "IG_TEST_1")  # the patient wrote just now
    assert remind(any_clinic, graph).queued == 1
    assert remind(any_clinic, graph).queued == 0
    (message,) = graph.messages_to("IG_TEST_1")
    assert message["message"]["text"] == (
        "Reminder: you have an appointment on Feb 5, 2026 at 9:00 AM."
    )
    assert status_of(any_clinic, appointment.id) == "sent"
    with transaction(any_clinic.engine) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.name == "notification_sent")
        ).one()
        (row,) = session.scalars(select(OutboxMessage))
        assert (row.origin, row.status, row.body) == (f"reminder:{appointment.id}:1", "sent", None)
    assert event.appointment_id == appointment.id and "IG_TEST_1" not in event.recipient_hash


def test_window_closed_waits_then_goes_out_when_the_patient_writes(any_clinic, clock, graph):
    _, appointment = booked_for_thursday_9(any_clinic)
    note_message(any_clinic, "IG_TEST_1")  # Monday 8:00
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)  # Wednesday 13:00: window closed
    report = remind(any_clinic, graph)
    assert (report.queued, report.window_closed) == (0, 1)
    assert graph.sent == []
    assert status_of(any_clinic, appointment.id) == "window_closed"
    clock.advance(timedelta(hours=2))
    note_message(any_clinic, "IG_TEST_1")  # the patient writes again
    assert remind(any_clinic, graph).queued == 1
    assert status_of(any_clinic, appointment.id) == "sent"


def test_graph_error_10_2534022_is_recorded_as_window_closed_and_queued_again_later(
    any_clinic, clock, graph
):
    _, appointment = booked_for_thursday_9(any_clinic)
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)
    note_message(any_clinic, "IG_TEST_1")
    graph.queue(FakeResponse.graph_error(10, 2534022))
    assert remind(any_clinic, graph).queued == 1
    assert len(graph.sent) == 1  # a permanent error is not retried
    assert status_of(any_clinic, appointment.id) == "window_closed"
    note_message(any_clinic, "IG_TEST_1")
    assert remind(any_clinic, graph).queued == 1  # a second try, under a key of its own
    assert status_of(any_clinic, appointment.id) == "sent"
    assert len(graph.delivered) == 1


def test_a_failed_send_is_retried_by_the_outbox_and_551_is_final(any_clinic, clock, graph):
    _, first = booked_for_thursday_9(any_clinic)
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)
    note_message(any_clinic, "IG_TEST_1")
    graph.queue(FakeResponse(500))
    assert remind(any_clinic, graph).queued == 1
    assert status_of(any_clinic, first.id) == "queued"  # waits for its next try
    clock.advance(timedelta(seconds=30))
    remind(any_clinic, graph)
    assert status_of(any_clinic, first.id) == "sent"

    patient = add_patient(any_clinic, "IG_TEST_2")
    second = book(any_clinic, first.doctor_id, patient.id, at(THURSDAY, 10))
    note_message(any_clinic, "IG_TEST_2")
    graph.queue(FakeResponse.graph_error(551))
    assert remind(any_clinic, graph).queued == 1
    assert remind(any_clinic, graph) == RunReport(0, 0)
    assert status_of(any_clinic, second.id) == "recipient_unavailable"


def test_a_cancelled_appointment_gets_no_reminder(any_clinic, clock, graph):
    patient, appointment = booked_for_thursday_9(any_clinic)
    cancel(any_clinic, appointment.id, patient.id)
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)
    note_message(any_clinic, "IG_TEST_1")
    assert remind(any_clinic, graph).queued == 0
    assert graph.sent == []


def test_two_runs_at_once_queue_and_send_each_reminder_once(database_url, clock, graph):
    settings = Settings(database_url=database_url)
    setup = Clinic(create_database_engine(database_url), settings, clock)
    doctor = add_doctor(setup)
    for number in range(6):
        patient = add_patient(setup, f"IG_TEST_{number}")
        book(setup, doctor, patient.id, at(THURSDAY, 9) + timedelta(minutes=30 * number))
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)
    with transaction(setup.engine) as session:
        for patient in session.scalars(select(Patient)):
            patient.last_message_at = clock.moment
    runs = [
        Clinic(create_database_engine(database_url, poolclass=NullPool), settings, clock)
        for _ in range(2)
    ]
    barrier = threading.Barrier(2)
    reports = []

    def run(clinic: Clinic) -> None:
        barrier.wait()
        reports.append(remind(clinic, graph))

    threads = [threading.Thread(target=run, args=(c,)) for c in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.queued for r in reports) == 6
    recipients = [r.body["recipient"]["id"] for r in graph.delivered]
    assert sorted(recipients) == sorted(f"IG_TEST_{n}" for n in range(6))
    for clinic in [setup, *runs]:
        clinic.engine.dispose()


def test_the_confirmation_promises_an_instagram_reminder_only_inside_the_window():
    now = datetime(2026, 2, 2, 13, tzinfo=timezone.utc)
    lead = timedelta(hours=24)
    assert reminder_channel(now + timedelta(hours=47), now, lead, False, False) == INSTAGRAM
    assert reminder_channel(now + timedelta(hours=49), now, lead, False, False) is None
    assert reminder_channel(now + timedelta(hours=30), None, lead, False, False) is None


def test_the_calendar_feed_parses_and_names_patients_by_initial_only(any_clinic, clock):
    doctor = add_doctor(any_clinic, name="Dr. Test, Family; Medicine")
    patient = add_patient(any_clinic)
    first = book(any_clinic, doctor, patient.id, at(THURSDAY, 9))
    second = book(any_clinic, doctor, patient.id, at(THURSDAY, 14))
    cancel(any_clinic, second.id, patient.id)
    add_block(any_clinic, at(THURSDAY, 12), at(THURSDAY, 13), doctor)
    feed = doctor_calendar(any_clinic, doctor)
    assert "PATIENT_TEST" not in feed and "+12025550143" not in feed and "IG_TEST" not in feed
    assert all(len(line.encode()) <= 75 for line in feed.split("\r\n"))
    calendar = icalendar.Calendar.from_ical(feed)
    assert str(calendar["X-WR-CALNAME"]) == "Dr. Test, Family; Medicine"
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    booked = events[f"appointment-{first.id}@clinic-dm"]
    assert str(booked["SUMMARY"]) == "Appointment (P.)"
    assert booked.decoded("DTSTART") == at(THURSDAY, 9).astimezone(timezone.utc)
    assert booked.decoded("DTEND") - booked.decoded("DTSTART") == timedelta(minutes=30)
    assert str(events[f"appointment-{second.id}@clinic-dm"]["STATUS"]) == "CANCELLED"
    blocks = [e for uid, e in events.items() if uid.startswith("block-")]
    assert [str(b["SUMMARY"]) for b in blocks] == ["Blocked: test"]
