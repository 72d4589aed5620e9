"""Reminders by text message through a fake Twilio, with a frozen clock: where each goes,
Twilio's refusals, its pace, a try whose answer was lost, delivery reports; answers to a
reminder text; erasure. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from clinic.booking import book
from clinic.context import Clinic
from clinic.db import transaction
from clinic.delivery import Outbox
from clinic.erasure import erase_in
from clinic.models import Appointment, AuditEvent, OutboxMessage, Patient, TextThread
from clinic.outbox import SMS, Reply
from clinic.patients import note_message
from clinic.profile import load_profile
from clinic.reminders import queue_due_reminders
from clinic.settings import DEFAULT_PROFILE_PATH
from clinic.templates import format_when, load_templates
from clinic.text_replies import InboundText, answer_text
from connectors.fake_twilio import ACCOUNT_SID, FakeError, FakeTwilio
from connectors.graph_messages import text_messages
from connectors.outbox import OutboxSender
from connectors.sms_client import TwilioTexts
from tests.conftest import TEST_PHONE, build_clinic
from tests.factories import add_doctor, add_patient

NEW_YORK = ZoneInfo("America/New_York")
THURSDAY = date(2026, 2, 5)
TEMPLATES = load_templates()
PROFILE = load_profile(DEFAULT_PROFILE_PATH)


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, datetime.min.time().replace(hour=hour), tzinfo=NEW_YORK)


@pytest.fixture
def twilio():
    with FakeTwilio(auth_token="sms-token") as fake:
        yield fake


@pytest.fixture
def texting(database_url, clock, twilio) -> Clinic:
    """A clinic with Twilio set up (the fake), as fast as the test wants."""
    built = build_clinic(
        database_url,
        clock,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token="sms-token",
        twilio_from="+12025550100",
        twilio_api_url=twilio.base_url,
        twilio_rate=50.0,
    )
    yield built
    built.engine.dispose()


def render(start: datetime, zone: ZoneInfo, channel: str) -> str:
    name = "reminder_text" if channel == SMS else "reminder"
    return TEMPLATES.render(name, when=format_when(start, zone), clinic="Demo Clinic")


def remind(clinic: Clinic):  # noqa: ANN201
    """`python -m clinic remind`: queue what is due, then send until nothing is due."""
    key = clinic.settings.id_hash_key
    outbox = Outbox(clinic.engine, "remind-test", timedelta(seconds=15), key, clinic.now)
    texts = TwilioTexts(clinic.settings) if clinic.settings.sms_configured else None
    report = queue_due_reminders(clinic, outbox, render, text_messages)
    sender = OutboxSender(
        outbox, None, timedelta(minutes=3), key, None, texts, clinic.settings.twilio_rate
    )
    while sender.poll():
        pass
    return report


def due_thursday_visit(clinic: Clinic, clock, instagram_id: str = "IG_TEST_1"):  # noqa: ANN001
    """A visit on Thursday 9:00, booked Monday by a patient who wrote then; now Wednesday
    13:00: the reminder is due and Instagram's window closed long ago."""
    doctor = add_doctor(clinic)
    patient = add_patient(clinic, instagram_id)
    note_message(clinic, instagram_id)
    appointment = book(clinic, doctor, patient.id, at(THURSDAY, 9))
    clock.moment = at(THURSDAY, 9) - timedelta(hours=20)
    return patient, appointment


def test_outside_the_window_the_reminder_is_a_text_sent_once(texting, clock, twilio):
    _, appointment = due_thursday_visit(texting, clock)
    assert remind(texting).queued == 1
    assert remind(texting).queued == 0
    (text,) = twilio.texts
    assert (text.to, text.sender) == (TEST_PHONE, "+12025550100")
    assert text.body == (
        "Reminder from Demo Clinic: your appointment is on Feb 5, 2026 at 9:00 AM. "
        "Reply C to confirm or X to cancel."
    )
    assert text.status_callback == "http://localhost:5005/webhooks/twilio/status"
    with transaction(texting.engine) as session:
        row = session.scalars(select(OutboxMessage)).one()
        sent = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.name == "notification_sent"))  # fmt: skip
    assert (row.channel, row.status, row.provider_id, row.body) == (SMS, "sent", text.sid, None)
    assert sent == 1


def test_a_patient_who_said_no_texts_gets_none(texting, clock, twilio):
    patient, _ = due_thursday_visit(texting, clock)
    with transaction(texting.engine) as session:
        session.get(Patient, patient.id).takes_texts = 0
    report = remind(texting)
    assert (report.queued, report.window_closed) == (0, 1)
    assert twilio.texts == []


def test_without_twilio_settings_everything_works_as_before(any_clinic, clock, twilio):
    due_thursday_visit(any_clinic, clock)
    report = remind(any_clinic)
    assert (report.queued, report.window_closed) == (0, 1)
    assert twilio.texts == []


def test_an_opted_out_number_is_marked_and_gets_no_more_texts(texting, clock, twilio):
    patient, _ = due_thursday_visit(texting, clock)
    twilio.opt_out(TEST_PHONE)
    assert remind(texting).queued == 1
    assert twilio.texts == [] and twilio.refused[0]["code"] == 21610
    with transaction(texting.engine) as session:
        assert session.get(Patient, patient.id).takes_texts == 0
        row = session.scalars(select(OutboxMessage)).one()
    assert (row.status, row.error) == ("failed", "opted out (21610)")


def test_twilio_refusing_for_now_is_tried_again_and_for_good_is_kept(texting, clock, twilio):
    due_thursday_visit(texting, clock)
    twilio.queue(FakeError(429, 20429, "Too Many Requests"))
    remind(texting)
    with transaction(texting.engine) as session:
        row = session.scalars(select(OutboxMessage)).one()
    assert (row.status, row.not_before is not None) == ("pending", True)
    clock.advance(timedelta(minutes=1))
    remind(texting)
    assert len(twilio.texts) == 1
    # A number Twilio can't text (21211) is final: kept as failed, not tried again.
    other = add_patient(texting, "IG_TEST_2")
    with transaction(texting.engine) as session:
        session.get(Patient, other.id).phone = "+12025550144"
    appointment = book(texting, add_doctor(texting, name="Dr. Two"), other.id, at(THURSDAY, 10))
    twilio.queue(FakeError(400, 21211, "Invalid To"))
    remind(texting)
    with transaction(texting.engine) as session:
        failed = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == "failed")
        ).one()
    assert failed.error.startswith("rejected code=21211") and appointment.id


def test_a_try_whose_answer_was_lost_is_not_sent_twice(texting, clock, twilio):
    """The process died after Twilio took the text, before the outbox recorded it: the next
    claim finds it at Twilio and marks it sent."""
    due_thursday_visit(texting, clock)
    key = texting.settings.id_hash_key
    outbox = Outbox(texting.engine, "dead", timedelta(seconds=15), key, texting.now)
    queue_due_reminders(texting, outbox, render, text_messages)
    (item,) = outbox.claim(1)
    outbox.tried(item.id)
    TwilioTexts(texting.settings).send(item.recipient_id, item.body["text"])  # then the crash
    clock.advance(timedelta(seconds=16))  # the lease runs out
    remind(texting)
    assert len(twilio.texts) == 1
    with transaction(texting.engine) as session:
        assert session.scalars(select(OutboxMessage.status)).one() == "sent"


def test_no_phone_number_reaches_a_log_line_at_any_level(texting, clock, twilio, caplog):
    """The twilio library logs its requests at INFO, a look-up's query (To=…) included."""
    caplog.set_level(logging.DEBUG)
    test_a_try_whose_answer_was_lost_is_not_sent_twice(texting, clock, twilio)
    _inbound(texting, "X")
    _inbound(texting, "hello?", phone="+12025550199")
    remind(texting)  # the answers go out
    assert len(twilio.texts) == 3
    logged = "\n".join(record.getMessage() for record in caplog.records)
    digits = [TEST_PHONE, "+12025550199", "2025550143", "2025550199", "555-0143", "555 0143"]
    assert not [d for d in digits if d in logged or quote(d) in logged]


def test_texts_go_out_at_the_configured_pace(texting, clock, twilio):
    outbox = Outbox(texting.engine, "pace", timedelta(seconds=60), "key")
    phones = [f"+1202555{n:04d}" for n in range(120, 130)]
    stored = outbox.store([Reply(p, f"pace:{p}", 0, {"text": "hi"}, SMS) for p in phones])
    sender = OutboxSender(outbox, None, timedelta(minutes=3), "key", None,
                          TwilioTexts(texting.settings), 5.0)  # fmt: skip
    started = time.monotonic()
    for item in stored.leased:  # as a turn's end sends what it stored
        sender.send([item])
    times = sorted(t.created for t in twilio.texts)
    assert len(times) == 10
    assert times[-1] - times[0] >= 9 * 0.2 - 0.05  # 5 a second, not faster
    assert time.monotonic() - started < 10


def test_a_delivery_report_of_failure_is_a_dead_letter_and_the_reminder_failed(
    texting, clock, twilio
):
    _, appointment = due_thursday_visit(texting, clock)
    remind(texting)
    (text,) = twilio.texts
    outbox = Outbox(texting.engine, "report", timedelta(seconds=15), "key")
    assert outbox.delivery_report(text.sid, "undelivered", "30003")
    assert not outbox.delivery_report("SM-unknown", "delivered", None)
    with transaction(texting.engine) as session:
        row = session.scalars(select(OutboxMessage)).one()
        state = session.execute(
            select(func.max(AuditEvent.id))
        ).scalar()  # fmt: skip
    assert (row.status, row.delivery, row.error) == (
        "failed",
        "undelivered",
        "text undelivered (code 30003)",
    )
    assert state and appointment.id


def _inbound(clinic: Clinic, body: str, phone: str = TEST_PHONE, sid: str | None = None) -> str:
    outbox = Outbox(clinic.engine, "inbound", timedelta(seconds=15), "key")
    text = InboundText(sid or f"SM{time.monotonic_ns()}", phone, body)
    return answer_text(clinic, outbox, TEMPLATES, PROFILE, text)


def _answers(clinic: Clinic, phone: str = TEST_PHONE) -> list[str]:
    with transaction(clinic.engine) as session:
        rows = session.scalars(
            select(OutboxMessage.body)
            .where(OutboxMessage.recipient_id == phone, OutboxMessage.origin.like("text:%"))
            .order_by(OutboxMessage.id)
        ).all()
    return [body["text"] for body in rows]


def test_c_confirms_the_next_visit_and_x_then_yes_cancels_it(any_clinic, clock):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    first = book(any_clinic, doctor, patient.id, at(THURSDAY, 9))
    later = book(any_clinic, doctor, patient.id, at(THURSDAY, 15))
    assert _inbound(any_clinic, "C") == "confirm"
    assert _inbound(any_clinic, "x") == "cancel"
    assert _inbound(any_clinic, "YES") == "yes"
    with transaction(any_clinic.engine) as session:
        visits = {a.id: a for a in session.scalars(select(Appointment))}
        assert session.scalar(select(func.count()).select_from(TextThread)) == 0
    assert visits[first.id].confirmed_at == clock() and visits[first.id].status == "cancelled"
    assert visits[later.id].status == "booked" and visits[later.id].confirmed_at is None
    assert _answers(any_clinic) == [
        "Thank you: your appointment on Feb 5, 2026 at 9:00 AM is confirmed. See you then!",
        "Cancel your visit on Feb 5, 2026 at 9:00 AM? Reply YES to cancel",
        "Done: your appointment on Feb 5, 2026 at 9:00 AM is cancelled. To book another time, "
        "write to us on Instagram or call +1 202 555 0100.",
    ]


def test_an_unknown_number_gets_the_fallback_and_nothing_changes(any_clinic, clock):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    visit = book(any_clinic, doctor, patient.id, at(THURSDAY, 9))
    assert _inbound(any_clinic, "X", phone="+12025550199") == "cancel (unknown number)"
    assert _inbound(any_clinic, "YES", phone="+12025550199") == "confirm (unknown number)"
    assert (
        _answers(any_clinic, "+12025550199")
        == [
            "This number only sends Demo Clinic's reminders. For anything else, call "
            "+1 202 555 0100 or write to us on Instagram: @democlinic."
        ]
        * 2
    )
    with transaction(any_clinic.engine) as session:
        stored = session.get(Appointment, visit.id)
        assert session.scalar(select(func.count()).select_from(TextThread)) == 0
    assert (stored.status, stored.confirmed_at) == ("booked", None)


def test_stop_and_start_follow_twilio_and_a_redelivery_is_answered_once(any_clinic, clock):
    add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    assert _inbound(any_clinic, "STOP", sid="SM1") == "stop"
    with transaction(any_clinic.engine) as session:
        assert session.get(Patient, patient.id).takes_texts == 0
    assert _answers(any_clinic) == []  # Twilio answers STOP itself
    _inbound(any_clinic, "start")
    with transaction(any_clinic.engine) as session:
        assert session.get(Patient, patient.id).takes_texts == 1
    # A family's phone: Twilio stops every text to the number, so nobody with it gets one.
    sibling = add_patient(any_clinic, "IG_TEST_2")
    _inbound(any_clinic, "stop")
    with transaction(any_clinic.engine) as session:
        assert [session.get(Patient, p.id).takes_texts for p in (patient, sibling)] == [0, 0]
    _inbound(any_clinic, "start")
    assert _inbound(any_clinic, "where do I park?", sid="SM2") == "other"
    assert _inbound(any_clinic, "where do I park?", sid="SM2") == "duplicate"  # answered once
    assert len(_answers(any_clinic)) == 1


def test_erasure_removes_every_text_message_of_the_patient(texting, clock, twilio):
    patient, _ = due_thursday_visit(texting, clock)
    remind(texting)  # a sent reminder text
    _inbound(texting, "X")  # an answer waiting to go, and a question asked
    outbox = Outbox(texting.engine, "x", timedelta(seconds=15), "key")
    outbox.store([Reply(TEST_PHONE, "failed:1", 0, {"text": "x"}, SMS)])
    with transaction(texting.engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 3
        erase_in(session, texting, session.get(Patient, patient.id))
    with transaction(texting.engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert session.scalar(select(func.count()).select_from(TextThread)) == 0
