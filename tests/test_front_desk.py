"""The front desk's use cases: book a caller, cancel and move with notice, block time, and
the calendar it reads. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from clinic import audit
from clinic.db import transaction
from clinic.errors import InvalidPhoneError, SlotTakenError
from clinic.front_desk import (
    Caller,
    add_block,
    block_hits,
    book_caller,
    call_made,
    calls_to_make,
    cancel_visit,
    free_starts,
    move_visit,
    notices_of,
)
from clinic.models import (
    NOTICE_CALL,
    NOTICE_DM,
    NOTICE_SMS,
    Appointment,
    AuditEvent,
    OutboxMessage,
    Patient,
)
from clinic.patients import note_message
from clinic.profile import load_profile
from clinic.schedule import FREE, PAST, clinic_day, doctor_week
from clinic.settings import DEFAULT_PROFILE_PATH
from clinic.templates import templates_for
from tests.conftest import TEST_NAME, TEST_PHONE, build_clinic
from tests.factories import add_doctor, add_patient

ZONE = ZoneInfo("America/New_York")
PROFILE = load_profile(DEFAULT_PROFILE_PATH)
STAFF = 7  # a staff member's id: the use cases record it, they don't look it up
TUESDAY = date(2026, 2, 3)


def at(hour: int, minute: int = 0, day: date = TUESDAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


@pytest.fixture
def desk(database_url, clock):
    """A clinic whose Instagram channel is configured, so DMs can be sent."""
    built = build_clinic(database_url, clock, instagram_access_token="token")
    yield built
    built.engine.dispose()


def _book(desk, start, *, doctor, name=TEST_NAME, phone=TEST_PHONE, visit=None):
    return book_caller(desk, PROFILE, STAFF, doctor, visit, start, Caller(name, phone))


def test_a_caller_is_booked_with_consent_by_phone_recorded_to_the_staff_member(desk):
    doctor = add_doctor(desk)
    booked = _book(desk, at(10), doctor=doctor)
    with transaction(desk.engine) as session:
        patient = session.get(Patient, booked.patient_id)
        appointment = session.get(Appointment, booked.appointment.id)
        events = session.execute(
            select(AuditEvent.name, AuditEvent.staff_id, AuditEvent.details)
            .where(AuditEvent.patient_id == patient.id)
            .order_by(AuditEvent.id)
        ).all()
    assert (patient.name, patient.phone, patient.instagram_id) == (TEST_NAME, TEST_PHONE, None)
    assert (patient.consent_via, patient.consent_staff_id) == ("phone", STAFF)
    assert (appointment.source, appointment.booked_by_staff_id) == ("phone", STAFF)
    assert [(name, who) for name, who, _ in events] == [
        (audit.CONSENT_GRANTED, STAFF),
        (audit.APPOINTMENT_BOOKED, STAFF),
    ]
    assert TEST_NAME not in repr(events) and TEST_PHONE not in repr(events)


def test_a_caller_already_on_file_by_phone_is_not_duplicated(desk):
    doctor = add_doctor(desk)
    on_file = add_patient(desk, "IG_TEST_ON_FILE")  # booked on Instagram before
    booked = _book(desk, at(10), name="Someone Else", phone="(202) 555-0143", doctor=doctor)
    assert booked.existing_patient and booked.patient_id == on_file.id
    assert booked.patient_name == TEST_NAME
    with transaction(desk.engine) as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 1


def test_the_desk_may_book_within_the_notice_patients_need_but_not_in_the_past(desk, clock):
    doctor = add_doctor(desk)
    monday = clock().astimezone(ZONE).date()  # 8:00 on Monday, Feb 2
    starts = free_starts(desk, doctor, monday, 30)
    assert starts[0] == at(9, day=monday)  # patients must wait 2 hours: 10:00
    assert _book(desk, at(9, day=monday), doctor=doctor).appointment.source == "phone"
    clock.advance(timedelta(hours=2))
    assert at(9, 30, day=monday) not in free_starts(desk, doctor, monday, 30)


def test_bad_caller_details_write_nothing(desk):
    doctor = add_doctor(desk)
    with pytest.raises(InvalidPhoneError):
        _book(desk, at(10), phone="555 0100", doctor=doctor)
    with transaction(desk.engine) as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0
        assert session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_a_slot_taken_meanwhile_is_refused_by_the_database(desk):
    """Two desks race for one slot on real connections: one booking, one SlotTakenError."""
    doctor = add_doctor(desk)
    outcomes, barrier = [], threading.Barrier(2)

    def attempt(phone: str) -> None:
        barrier.wait()
        try:
            _book(desk, at(11), phone=phone, doctor=doctor)
            outcomes.append("booked")
        except SlotTakenError:
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt, args=(p,)) for p in (TEST_PHONE, "+12025550144")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["booked", "taken"]
    with transaction(desk.engine) as session:
        assert session.scalar(select(func.count()).select_from(Appointment)) == 1


def test_cancelling_inside_the_window_sends_a_dm_through_the_outbox(desk, clock):
    doctor = add_doctor(desk)
    patient = add_patient(desk, "IG_TEST_WINDOW")
    note_message(desk, "IG_TEST_WINDOW", clock() - timedelta(hours=3))
    booked = _book(desk, at(10), doctor=doctor)
    change = cancel_visit(desk, templates_for(desk.settings), STAFF, booked.appointment.id)
    assert change.notice.channel == NOTICE_DM
    with transaction(desk.engine) as session:
        (reply,) = session.scalars(select(OutboxMessage)).all()
        assert session.get(Appointment, booked.appointment.id).status == "cancelled"
    assert reply.recipient_id == "IG_TEST_WINDOW" and reply.status == "pending"
    assert reply.body == {
        "text": "The clinic has had to cancel your appointment on Feb 3, 2026 at 10:00 AM. "
        "We're sorry for the change. Reply here and we'll find you another time."
    }
    assert [n.state for n in notices_of(desk, booked.appointment.id)] == ["sending"]
    assert patient.id == booked.patient_id


def test_outside_the_window_the_desk_is_asked_to_call(desk, clock):
    doctor = add_doctor(desk)
    add_patient(desk, "IG_TEST_QUIET")
    note_message(desk, "IG_TEST_QUIET", clock() - timedelta(hours=25))
    booked = _book(desk, at(10), doctor=doctor)
    change = cancel_visit(desk, templates_for(desk.settings), STAFF, booked.appointment.id)
    assert (change.notice.channel, change.notice.phone) == (NOTICE_CALL, TEST_PHONE)
    with transaction(desk.engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    (call,) = calls_to_make(desk)
    assert (call.appointment_id, call.phone, call.change) == (
        booked.appointment.id,
        TEST_PHONE,
        "cancelled",
    )
    call_made(desk, STAFF, call.notice_id)
    assert calls_to_make(desk) == []
    assert [n.state for n in notices_of(desk, booked.appointment.id)] == ["called"]


def test_outside_the_window_with_texts_set_up_the_patient_gets_a_text(database_url, clock):
    texting = build_clinic(
        database_url, clock, instagram_access_token="token", twilio_account_sid="AC1",
        twilio_auth_token="t", twilio_from="+12025550100",
    )  # fmt: skip
    doctor = add_doctor(texting)
    add_patient(texting, "IG_TEST_QUIET")
    note_message(texting, "IG_TEST_QUIET", clock() - timedelta(hours=25))
    booked = _book(texting, at(10), doctor=doctor)
    change = cancel_visit(texting, templates_for(texting.settings), STAFF,
                          booked.appointment.id, PROFILE)  # fmt: skip
    assert change.notice.channel == NOTICE_SMS
    with transaction(texting.engine) as session:
        (text,) = session.scalars(select(OutboxMessage)).all()
    assert (text.channel, text.recipient_id, text.status) == ("sms", TEST_PHONE, "pending")
    assert text.body["text"] == (
        "Demo Clinic: we have had to cancel your appointment on Feb 3, 2026 at 10:00 AM. "
        "We're sorry for the change. To book another time, call +1 202 555 0100 or write to "
        "us on Instagram."
    )
    assert calls_to_make(texting) == []
    # A patient who said "no texts" is called instead.
    second = _book(texting, at(11), doctor=doctor)
    with transaction(texting.engine) as session:
        session.get(Patient, second.patient_id).takes_texts = 0
    change = cancel_visit(texting, templates_for(texting.settings), STAFF,
                          second.appointment.id, PROFILE)  # fmt: skip
    assert change.notice.channel == NOTICE_CALL
    assert [c.appointment_id for c in calls_to_make(texting)] == [second.appointment.id]
    texting.engine.dispose()


def test_without_an_instagram_token_every_notice_is_a_call(database_url, clock):
    plain = build_clinic(database_url, clock)
    doctor = add_doctor(plain)
    add_patient(plain, "IG_TEST_NO_TOKEN")
    note_message(plain, "IG_TEST_NO_TOKEN", clock())
    booked = _book(plain, at(10), doctor=doctor)
    change = cancel_visit(plain, templates_for(plain.settings), STAFF, booked.appointment.id)
    assert change.notice.channel == NOTICE_CALL
    plain.engine.dispose()


def test_moving_keeps_the_visit_and_tells_the_patient(desk, clock):
    doctor = add_doctor(desk, visit_types="consultation,procedure")
    add_patient(desk, "IG_TEST_MOVE")
    note_message(desk, "IG_TEST_MOVE", clock())
    booked = _book(desk, at(10), doctor=doctor, visit="procedure")
    starts = free_starts(desk, doctor, TUESDAY, 60, moving=booked.appointment.id)
    assert at(10) in starts and at(10, 30) in starts  # its own hour counts as free
    change = move_visit(desk, templates_for(desk.settings), STAFF, booked.appointment.id, at(14))
    moved = change.appointment
    assert (moved.visit_type, moved.end_at - moved.start_at) == ("procedure", timedelta(hours=1))
    assert (moved.source, moved.booked_by_staff_id) == ("phone", STAFF)
    with transaction(desk.engine) as session:
        old = session.get(Appointment, booked.appointment.id)
        (reply,) = session.scalars(select(OutboxMessage)).all()
    assert old.status == "cancelled"
    assert reply.body["text"].startswith("The clinic has moved your appointment to Feb 3, 2026 at")


def test_a_move_to_a_taken_time_keeps_the_old_visit(desk):
    doctor = add_doctor(desk)
    first = _book(desk, at(10), doctor=doctor)
    _book(desk, at(11), phone="+12025550144", doctor=doctor)
    with pytest.raises(SlotTakenError):
        move_visit(desk, templates_for(desk.settings), STAFF, first.appointment.id, at(11))
    with transaction(desk.engine) as session:
        assert session.get(Appointment, first.appointment.id).status == "booked"
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_block_lists_the_visits_it_hits_and_cancels_them_with_notice(desk, clock):
    doctor = add_doctor(desk)
    other = add_doctor(desk, name="Dr. Other")
    add_patient(desk, "IG_TEST_BLOCK")
    note_message(desk, "IG_TEST_BLOCK", clock())
    hit = _book(desk, at(14), doctor=doctor)  # the Instagram patient: a DM
    phone_only = _book(desk, at(15), name="Other Patient", phone="+12025550144", doctor=doctor)
    spared = _book(desk, at(14), name="Third Patient", phone="+12025550145", doctor=other)
    afternoon = (at(13), at(17))
    hits = block_hits(desk, doctor, *afternoon)
    assert [a.id for a in hits] == [hit.appointment.id, phone_only.appointment.id]
    templates = templates_for(desk.settings)
    changes = add_block(desk, templates, STAFF, doctor, *afternoon, "Sick", cancel_hits=True)
    assert [c.notice.channel for c in changes] == [NOTICE_DM, NOTICE_CALL]
    with transaction(desk.engine) as session:
        statuses = dict(session.execute(select(Appointment.id, Appointment.status)).all())
    assert statuses[hit.appointment.id] == statuses[phone_only.appointment.id] == "cancelled"
    assert statuses[spared.appointment.id] == "booked"
    assert at(14) not in free_starts(desk, doctor, TUESDAY, 30)


def test_a_block_may_keep_the_visits_it_hits(desk):
    doctor = add_doctor(desk)
    booked = _book(desk, at(14), doctor=doctor)
    add_block(desk, templates_for(desk.settings), STAFF, None, at(13), at(17), "Closed", False)
    with transaction(desk.engine) as session:
        assert session.get(Appointment, booked.appointment.id).status == "booked"
    assert [s for s in free_starts(desk, doctor, TUESDAY, 30) if s >= at(13)] == []


def test_the_week_shows_visits_with_who_and_where_blocks_and_free_times(desk, clock):
    doctor = add_doctor(desk)
    _book(desk, at(10), doctor=doctor)
    add_block(desk, templates_for(desk.settings), STAFF, doctor, at(15), at(17), "Training", False)
    monday = date(2026, 2, 2)
    grid = doctor_week(desk, doctor, monday)
    assert [c.day for c in grid.columns] == [monday + timedelta(days=n) for n in range(7)]
    assert [c.closed for c in grid.columns] == [False] * 5 + [True, True]
    assert (grid.rows[0], grid.rows[-1], grid.visits) == (time(9), time(16, 30), 1)
    tuesday = grid.columns[1]
    (visit,) = [c.visit for c in tuesday.cells if c.kind == "visit"]
    assert (visit.patient_name, visit.phone, visit.visit, visit.source) == (
        TEST_NAME,
        TEST_PHONE,
        "Consultation",
        "phone",
    )
    (block,) = [c for c in tuesday.cells if c.kind == "block"]
    assert (block.block.reason, grid.rows[block.row], block.rows) == ("Training", time(15), 4)
    free = [c.start for c in tuesday.cells if c.kind == FREE]
    assert at(10) not in free and at(9) in free and at(15) not in free and at(12) not in free
    # Monday 8:00: the morning's slots until now are past, not free.
    monday_cells = {c.start: c.kind for c in grid.columns[0].cells}
    assert monday_cells[at(9, day=monday)] == FREE  # 9:00 is still ahead at 8:00
    clock.advance(timedelta(hours=2))
    later = doctor_week(desk, doctor, monday)
    assert {c.start: c.kind for c in later.columns[0].cells}[at(9, day=monday)] == PAST


def test_the_clinic_day_has_a_column_per_doctor(desk):
    first = add_doctor(desk, name="Dr. First")
    add_doctor(desk, name="Dr. Second", slot_minutes=15)
    _book(desk, at(10), doctor=first)
    grid = clinic_day(desk, TUESDAY)
    assert [c.title for c in grid.columns] == ["Dr. First", "Dr. Second"]
    assert grid.step == timedelta(minutes=15) and grid.visits == 1
    (visit,) = [c for c in grid.columns[0].cells if c.kind == "visit"]
    assert (grid.rows[visit.row], visit.rows) == (time(10), 2)


def test_an_erased_patients_visit_shows_without_a_name(desk):
    doctor = add_doctor(desk)
    with transaction(desk.engine) as session:
        session.add(
            Appointment(
                doctor_id=doctor,
                patient_id=None,
                start_at=at(10).astimezone(timezone.utc),
                end_at=at(10, 30).astimezone(timezone.utc),
            )
        )
    grid = doctor_week(desk, doctor, date(2026, 2, 2))
    (visit,) = [c.visit for c in grid.columns[1].cells if c.kind == "visit"]
    assert (visit.patient_id, visit.patient_name, visit.phone) == (None, "", "")


@pytest.mark.parametrize(
    "busy",
    [
        [("visit", 9, 0, 60)],
        [("block", 9, 15, 20), ("visit", 10, 0, 30)],
        [("visit", 9, 0, 30), ("visit", 9, 30, 30), ("block", 9, 45, 90)],
        [("block", 8, 0, 600)],
        [("visit", 16, 30, 30), ("block", 16, 59, 1)],
    ],
)
def test_no_free_cell_of_the_week_meets_a_visit_or_a_block(desk, busy):
    """Whatever the visits and blocks, the week's free cells are exactly the slots of the
    hours that meet none of them (adjacent is not meeting)."""
    doctor = add_doctor(desk, visit_types="consultation,procedure")
    taken = []
    for kind, hour, minute, minutes in busy:
        start, end = at(hour, minute), at(hour, minute) + timedelta(minutes=minutes)
        taken.append((start, end))
        if kind == "block":
            add_block(desk, templates_for(desk.settings), STAFF, doctor, start, end, "x", False)
        else:
            with transaction(desk.engine) as session:
                session.add(Appointment(doctor_id=doctor, start_at=start, end_at=end))
    grid = doctor_week(desk, doctor, date(2026, 2, 2))
    free = {c.start for c in grid.columns[1].cells if c.kind == FREE}
    slots = [at(9) + timedelta(minutes=30 * n) for n in range(16)]
    expected = {
        s
        for s in slots
        if time(12) > s.time() or s.time() >= time(13)
        if not any(s < e and b < s + timedelta(minutes=30) for b, e in taken)
    }
    assert free == expected
