"""What the front desk does to the books: book a caller, cancel or move a visit with notice
to the patient, block time. Each is one transaction, recorded in the audit with the staff
member's id.

Bookings go through the bot's own `insert_booking`, so the database refuses a double
booking from the desk exactly as from Instagram (`SlotTakenError`). Staff may book from now
on (no minimum notice, which is for patients) and up to a year ahead.

A patient is told of a change the clinic made by Instagram DM, through the durable outbox,
when Instagram's 24-hour window is open; otherwise the change carries a "call the patient"
notice until staff mark the call made.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic import audit, texting
from clinic.availability import days_with_slots, load_doctor, slots_in_session
from clinic.booking import (
    conflicts_as_slot_taken,
    insert_booking,
    mark_cancelled,
    reschedule_in,
)
from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import AppointmentNotFoundError, ClinicError
from clinic.models import (
    BOOKED,
    CONSENT_GRANTED,
    NOTICE_CALL,
    NOTICE_DM,
    NOTICE_SMS,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    SOURCE_PHONE,
    SOURCES,
    Appointment,
    BlockedTime,
    OutboxMessage,
    Patient,
    StaffNotice,
)
from clinic.outbox import INSTAGRAM as OUTBOX_INSTAGRAM
from clinic.outbox import SMS as OUTBOX_SMS
from clinic.patients import normalize_name, normalize_phone
from clinic.profile import Profile
from clinic.templates import Templates, format_when

STAFF_HORIZON_DAYS = 366
CANCELLED_CHANGE = "cancelled"
MOVED_CHANGE = "moved"


class BlockError(ClinicError):
    """A block that can't be saved as asked; the message says why."""


@dataclass(frozen=True)
class Caller:
    name: str
    phone: str
    source: str = SOURCE_PHONE  # or walk_in


@dataclass(frozen=True)
class Notice:
    """How the patient hears of the change: a DM on its way, or staff must call."""

    channel: str  # NOTICE_DM or NOTICE_CALL
    phone: str  # to call, when the channel is NOTICE_CALL


@dataclass(frozen=True)
class Change:
    appointment: Appointment
    notice: Notice | None  # None: no patient to tell (erased)


@dataclass(frozen=True)
class CallToMake:
    """A patient to call about a change the clinic made: no channel reached them."""

    notice_id: int
    appointment_id: int
    change: str
    start: datetime
    patient_name: str
    phone: str
    created_at: datetime


@dataclass(frozen=True)
class NoticeState:
    """A notice of a change, as the appointment page shows it."""

    id: int
    change: str
    channel: str
    state: str  # "sent", "sending", "delivered", "failed" (a message), "to call", "called"
    phone: str
    created_at: datetime


@dataclass(frozen=True)
class BookedCaller:
    appointment: Appointment
    patient_id: int
    existing_patient: bool  # the phone was on file: no second patient was made
    patient_name: str


def staff_clinic(clinic: Clinic) -> Clinic:
    """The clinic as the front desk books in it: from now on, up to a year ahead."""
    settings = replace(clinic.settings, min_notice=timedelta(0), horizon_days=STAFF_HORIZON_DAYS)
    return replace(clinic, settings=settings)


def free_starts(
    clinic: Clinic, doctor_id: int, day: date, minutes: int, moving: int | None = None
) -> list[datetime]:
    """The doctor's free starts on `day` for a visit of `minutes`, as the desk may book them
    (`moving`: an appointment being moved, whose own time counts as free)."""
    with transaction(clinic.engine) as session:
        doctor = load_doctor(session, doctor_id)
        return slots_in_session(session, staff_clinic(clinic), doctor, day, minutes, moving)


def next_free_day(clinic: Clinic, doctor_id: int, from_day: date, minutes: int) -> date | None:
    desk = staff_clinic(clinic)
    with transaction(clinic.engine) as session:
        days = days_with_slots(session, desk, load_doctor(session, doctor_id), from_day, minutes)
        found = next(days, None)
    return found[0] if found else None


def book_caller(
    clinic: Clinic,
    profile: Profile,
    staff_id: int,
    doctor_id: int,
    visit_key: str | None,
    start: datetime,
    caller: Caller,
) -> BookedCaller:
    """Books a caller: the patient with this phone, or a new one whose consent the staff
    member took by phone. Raises `SlotTakenError` (taken meanwhile), `SlotUnavailableError`,
    `InvalidNameError`, `InvalidPhoneError`; nothing is half-written."""
    if caller.source not in SOURCES:
        raise ClinicError("unknown source")
    name = normalize_name(caller.name)
    phone = normalize_phone(caller.phone, clinic.settings.phone_default_region)
    visit = profile.visit_type(visit_key)
    desk = staff_clinic(clinic)
    with conflicts_as_slot_taken(), transaction(clinic.engine) as session:
        patient = _patient_with_phone(session, phone)
        existing = patient is not None
        if patient is None:
            patient = _consented_by_phone(session, clinic, name, phone, staff_id)
        appointment = insert_booking(
            session,
            desk,
            doctor_id,
            patient.id,
            start,
            visit,
            source=caller.source,
            staff_id=staff_id,
        )
        return BookedCaller(appointment, patient.id, existing, patient.name or name)


def cancel_visit(
    clinic: Clinic,
    templates: Templates,
    staff_id: int,
    appointment_id: int,
    profile: Profile | None = None,
) -> Change:
    """Cancels an active visit and tells the patient (or asks staff to call); `profile`:
    the clinic's name and phone, which a text names."""
    with transaction(clinic.engine) as session:
        appointment = _active(session, appointment_id)
        mark_cancelled(session, clinic, appointment, staff_id)
        wording = (templates, profile)
        notice = _notify(session, clinic, appointment, CANCELLED_CHANGE, wording, staff_id)
        return Change(appointment, notice)


def move_visit(
    clinic: Clinic,
    templates: Templates,
    staff_id: int,
    appointment_id: int,
    new_start: datetime,
    profile: Profile | None = None,
) -> Change:
    """Moves an active visit to a free start of the same doctor (same length) and tells the
    patient. Raises `SlotTakenError` or `SlotUnavailableError`; the old visit then stays."""
    desk = staff_clinic(clinic)
    with conflicts_as_slot_taken(), transaction(clinic.engine) as session:
        old = _active(session, appointment_id)
        if old.patient_id is None:
            raise AppointmentNotFoundError("an anonymous visit can't be moved")
        moved = reschedule_in(session, desk, appointment_id, old.patient_id, new_start, staff_id)
        audit.record(
            session,
            audit.APPOINTMENT_MOVED,
            appointment_id=moved.id,
            patient_id=moved.patient_id,
            doctor_id=moved.doctor_id,
            staff_id=staff_id,
            moved_from=old.id,
        )
        notice = _notify(session, clinic, moved, MOVED_CHANGE, (templates, profile), staff_id)
        return Change(moved, notice)


def block_hits(
    clinic: Clinic, doctor_id: int | None, start: datetime, end: datetime
) -> list[Appointment]:
    """The active visits a block would fall on (every doctor's, for the whole clinic)."""
    _check_block(start, end)
    with transaction(clinic.engine) as session:
        return _hits(session, doctor_id, start, end)


def add_block(
    clinic: Clinic,
    templates: Templates,
    staff_id: int,
    doctor_id: int | None,
    start: datetime,
    end: datetime,
    reason: str,
    cancel_hits: bool,
    profile: Profile | None = None,
) -> list[Change]:
    """Saves the block; with `cancel_hits`, cancels the visits it falls on, with notice (the
    changes made), in the same transaction."""
    _check_block(start, end)
    with transaction(clinic.engine) as session:
        if doctor_id is not None:
            load_doctor(session, doctor_id)
        block = BlockedTime(
            doctor_id=doctor_id, start_at=start, end_at=end, reason=reason.strip()[:200]
        )
        session.add(block)
        session.flush()
        audit.record(session, audit.TIME_BLOCKED, doctor_id=doctor_id, staff_id=staff_id)
        changes = []
        if cancel_hits:
            for appointment in _hits(session, doctor_id, start, end):
                mark_cancelled(session, clinic, appointment, staff_id)
                wording = (templates, profile)
                notice = _notify(session, clinic, appointment, CANCELLED_CHANGE, wording, staff_id)
                changes.append(Change(appointment, notice))
        return changes


def call_made(clinic: Clinic, staff_id: int, notice_id: int) -> None:
    """The staff member called the patient about a change: the notice is done."""
    with transaction(clinic.engine) as session:
        notice = session.get(StaffNotice, notice_id)
        if notice is None or notice.done_at is not None:
            return
        notice.done_at = clinic.now()
        audit.record(
            session,
            audit.PATIENT_NOTIFIED,
            appointment_id=notice.appointment_id,
            staff_id=staff_id,
            channel="call",
        )


def calls_to_make(clinic: Clinic) -> list[CallToMake]:
    """The calls staff still owe patients, oldest first."""
    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(StaffNotice, Appointment.start_at, Patient.name, Patient.phone)
            .join(Appointment, Appointment.id == StaffNotice.appointment_id)
            .outerjoin(Patient, Patient.id == Appointment.patient_id)
            .where(StaffNotice.channel == NOTICE_CALL, StaffNotice.done_at.is_(None))
            .order_by(StaffNotice.id)
        ).all()
    return [
        CallToMake(n.id, n.appointment_id, n.change, start, name or "", phone or "", n.created_at)
        for n, start, name, phone in rows
        if phone
    ]


def notices_of(clinic: Clinic, appointment_id: int) -> list[NoticeState]:
    """What the patient was told, or must be told, of changes to this visit."""
    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(StaffNotice, OutboxMessage.status, OutboxMessage.delivery, Patient.phone)
            .join(Appointment, Appointment.id == StaffNotice.appointment_id)
            .outerjoin(Patient, Patient.id == Appointment.patient_id)
            .outerjoin(OutboxMessage, OutboxMessage.origin == StaffNotice.outbox_key)
            .where(StaffNotice.appointment_id == appointment_id)
            .order_by(StaffNotice.id)
        ).all()
    states = []
    for notice, outbox_status, delivery, phone in rows:
        if notice.channel == NOTICE_CALL:
            state = "called" if notice.done_at else "to call"
        elif delivery == "delivered":
            state = "delivered"
        else:
            state = {OUTBOX_PENDING: "sending", OUTBOX_FAILED: "failed"}.get(outbox_status, "sent")
        states.append(
            NoticeState(
                notice.id, notice.change, notice.channel, state, phone or "", notice.created_at
            )
        )
    return states


def _check_block(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise BlockError("times need a zone")
    if end <= start:
        raise BlockError("the end must be after the start")
    if end - start > timedelta(days=366):
        raise BlockError("a block lasts a year at most")


def _hits(session: Session, doctor_id: int | None, start: datetime, end: datetime) -> list:
    query = (
        select(Appointment)
        .where(
            Appointment.status == BOOKED,
            Appointment.start_at < end,
            Appointment.end_at > start,
        )
        .order_by(Appointment.start_at, Appointment.doctor_id)
    )
    if doctor_id is not None:
        query = query.where(Appointment.doctor_id == doctor_id)
    return list(session.scalars(query))


def _active(session: Session, appointment_id: int) -> Appointment:
    appointment = session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None or appointment.status != BOOKED:
        raise AppointmentNotFoundError("no such active appointment")
    return appointment


def _patient_with_phone(session: Session, phone: str) -> Patient | None:
    return session.scalars(
        select(Patient)
        .where(Patient.phone == phone, Patient.consent_status == CONSENT_GRANTED)
        .order_by(Patient.id)
        .limit(1)
    ).first()


def _consented_by_phone(
    session: Session, clinic: Clinic, name: str, phone: str, staff_id: int
) -> Patient:
    patient = Patient(
        name=name,
        phone=phone,
        consent_status=CONSENT_GRANTED,
        consent_at=clinic.now(),
        consent_via=SOURCE_PHONE,
        consent_staff_id=staff_id,
        created_at=clinic.now(),
    )
    session.add(patient)
    session.flush()
    audit.record(
        session, audit.CONSENT_GRANTED, patient_id=patient.id, staff_id=staff_id, via="phone"
    )
    return patient


def _notify(
    session: Session,
    clinic: Clinic,
    appointment: Appointment,
    change: str,
    wording: tuple[Templates, Profile | None],
    staff_id: int,
) -> Notice | None:
    """A DM through the outbox when Instagram lets one through now, else a text when the
    patient takes them (and Twilio is set up), else a call to make."""
    patient = session.get(Patient, appointment.patient_id) if appointment.patient_id else None
    if patient is None:
        return None
    templates, profile = wording[0], wording[1] or Profile()
    now = clinic.now()
    instagram = patient.last_message_at if patient.instagram_id else None
    channel = texting.channel_now(
        now,
        instagram if clinic.settings.instagram_access_token else None,
        bool(patient.takes_texts and patient.phone),
        clinic.settings.sms_configured,
    )
    when = _when(clinic, appointment.start_at)
    key = f"notice:{appointment.id}:{change}:{uuid.uuid4().hex[:8]}" if channel else None
    if channel == texting.INSTAGRAM:
        body = {"text": templates.render(f"notice_{change}", when=when)}
        session.add(_outbox_row(patient.instagram_id, key, body, OUTBOX_INSTAGRAM, now))
    elif channel == texting.SMS:
        facts = {"clinic": profile.name or "The clinic", "phone": profile.phone}
        body = {"text": templates.render(f"notice_{change}_text", when=when, **facts)}
        session.add(_outbox_row(patient.phone, key, body, OUTBOX_SMS, now))
    notice_channel = {texting.INSTAGRAM: NOTICE_DM, texting.SMS: NOTICE_SMS}.get(
        channel or "", NOTICE_CALL
    )
    session.add(
        StaffNotice(
            appointment_id=appointment.id,
            change=change,
            channel=notice_channel,
            outbox_key=key,
            staff_id=staff_id,
            created_at=now,
        )
    )
    audit.record(
        session,
        audit.PATIENT_NOTIFIED if channel else audit.PATIENT_TO_CALL,
        appointment_id=appointment.id,
        patient_id=patient.id,
        staff_id=staff_id,
        channel=notice_channel,
    )
    return Notice(notice_channel, patient.phone or "")


def _outbox_row(recipient: str, key: str, body: dict, channel: str, now: datetime) -> OutboxMessage:
    return OutboxMessage(
        recipient_id=recipient,
        origin=key,
        seq=0,
        body=body,
        channel=channel,
        status=OUTBOX_PENDING,
        attempts=0,
        created_at=now,
    )


def _when(clinic: Clinic, start: datetime) -> str:
    return format_when(start, ZoneInfo(clinic.settings.timezone))
