"""Book, cancel, reschedule and list appointments; the database guards every booking."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import audit
from clinic.availability import load_doctor, slots_in_session
from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import (
    AppointmentNotFoundError,
    NotConsentedError,
    SlotTakenError,
    SlotUnavailableError,
)
from clinic.models import BOOKED, CANCELLED, SOURCE_INSTAGRAM, Appointment, Patient
from clinic.profile import VisitType

logger = logging.getLogger(__name__)

# PostgreSQL: unique_violation, exclusion_violation.
SLOT_CONFLICT_PGCODES = {"23505", "23P01"}


def book(clinic: Clinic, doctor_id: int, patient_id: int, start: datetime) -> Appointment:
    """Books `start` for a consented patient or raises; nothing is half-written.

    The free-slot check gives clear errors; the unique index (and on PostgreSQL
    the exclusion constraint) is what makes a double booking impossible.
    """
    with conflicts_as_slot_taken(), transaction(clinic.engine) as session:
        appointment = insert_booking(session, clinic, doctor_id, patient_id, start)
    logger.info("booked appointment=%s doctor=%s", appointment.id, doctor_id)
    return appointment


def reschedule(
    clinic: Clinic, appointment_id: int, patient_id: int, new_start: datetime
) -> Appointment:
    """Moves an appointment in one transaction: the old one is kept if the new slot fails."""
    with conflicts_as_slot_taken(), transaction(clinic.engine) as session:
        return reschedule_in(session, clinic, appointment_id, patient_id, new_start)


def reschedule_in(
    session: Session,
    clinic: Clinic,
    appointment_id: int,
    patient_id: int,
    new_start: datetime,
    staff_id: int | None = None,
) -> Appointment:
    """`reschedule` inside the caller's transaction (wrap it in `conflicts_as_slot_taken`);
    the visit keeps its type, length and where it was booked. `staff_id`: who moved it."""
    held = held_appointment(session, patient_id, new_start)
    if (
        held is not None
        and held.id != appointment_id
        and _cancelled_own(session, appointment_id, patient_id)
    ):
        return held  # moved already (a turn re-run after a crash)
    old = own_active_appointment(session, appointment_id, patient_id)
    mark_cancelled(session, clinic, old, staff_id)
    session.flush()
    appointment = insert_booking(
        session,
        clinic,
        old.doctor_id,
        patient_id,
        new_start,
        _same_visit(old),
        source=old.source,
        staff_id=staff_id,
    )
    appointment.visit_type = old.visit_type
    appointment.booked_by_staff_id = old.booked_by_staff_id
    return appointment


def cancel(clinic: Clinic, appointment_id: int, patient_id: int) -> Appointment:
    """Cancels the patient's own active appointment; its slot becomes free again."""
    with transaction(clinic.engine) as session:
        return cancel_in(session, clinic, appointment_id, patient_id)


def cancel_in(
    session: Session, clinic: Clinic, appointment_id: int, patient_id: int
) -> Appointment:
    appointment = own_active_appointment(session, appointment_id, patient_id)
    mark_cancelled(session, clinic, appointment)
    return appointment


def upcoming(clinic: Clinic, patient_id: int) -> list[Appointment]:
    """The patient's active appointments that have not started yet, earliest first."""
    with transaction(clinic.engine) as session:
        return upcoming_in(session, clinic, patient_id)


def upcoming_in(session: Session, clinic: Clinic, patient_id: int) -> list[Appointment]:
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.patient_id == patient_id,
                Appointment.status == BOOKED,
                Appointment.start_at > clinic.now(),
            )
            .order_by(Appointment.start_at)
        )
    )


def cancel_upcoming(session: Session, clinic: Clinic, patient_id: int) -> list[Appointment]:
    """Cancels all of a patient's future appointments inside the caller's transaction."""
    appointments = session.scalars(
        select(Appointment).where(
            Appointment.patient_id == patient_id,
            Appointment.status == BOOKED,
            Appointment.start_at > clinic.now(),
        )
    ).all()
    for appointment in appointments:
        mark_cancelled(session, clinic, appointment)
    return list(appointments)


def insert_booking(
    session: Session,
    clinic: Clinic,
    doctor_id: int,
    patient_id: int,
    start: datetime,
    visit: VisitType | None = None,
    *,
    source: str = SOURCE_INSTAGRAM,
    staff_id: int | None = None,
) -> Appointment:
    """Books `start` for a `visit` (its length; by default one of the doctor's slots),
    booked where `source` says (by staff member `staff_id`, at the desk)."""
    if start.tzinfo is None:
        raise SlotUnavailableError("the start time has no time zone")
    doctor = load_doctor(session, doctor_id)
    patient = session.get(Patient, patient_id)
    if patient is None or not patient.has_consented:
        raise NotConsentedError("the patient has not granted consent")
    held = held_appointment(session, patient_id, start, doctor_id)
    if held is not None:
        return held  # the same request again (a turn re-run after a crash): the same booking
    minutes = visit.minutes if visit else doctor.slot_minutes
    slot_length = timedelta(minutes=minutes)
    local_day = start.astimezone(ZoneInfo(doctor.timezone)).date()
    if start not in slots_in_session(session, clinic, doctor, local_day, minutes):
        if _overlaps_booking(session, doctor_id, start, start + slot_length):
            raise SlotTakenError("the slot is already booked")
        raise SlotUnavailableError("the start is not a free slot of this doctor")
    start = start.astimezone(timezone.utc)  # what the database will give back, too
    appointment = Appointment(
        doctor_id=doctor_id,
        patient_id=patient_id,
        start_at=start,
        end_at=start + slot_length,
        status=BOOKED,
        visit_type=visit.key if visit else None,
        source=source,
        booked_by_staff_id=staff_id,
        created_at=clinic.now(),
    )
    session.add(appointment)
    session.flush()
    audit.record(
        session,
        audit.APPOINTMENT_BOOKED,
        appointment_id=appointment.id,
        patient_id=patient_id,
        doctor_id=doctor_id,
        staff_id=staff_id,
        source=source,
    )
    return appointment


def _same_visit(appointment: Appointment) -> VisitType:
    """A moved appointment lasts as long as it did, whatever its type is called now."""
    minutes = int((appointment.end_at - appointment.start_at).total_seconds() // 60)
    key = appointment.visit_type or ""
    return VisitType(key, key, minutes, "", ())


def _cancelled_own(session: Session, appointment_id: int, patient_id: int) -> bool:
    appointment = session.get(Appointment, appointment_id)
    return (
        appointment is not None
        and appointment.patient_id == patient_id
        and appointment.status == CANCELLED
    )


def held_appointment(
    session: Session, patient_id: int, start: datetime, doctor_id: int | None = None
) -> Appointment | None:
    """The patient's active appointment that starts at `start` (with `doctor_id`), if any."""
    query = select(Appointment).where(
        Appointment.patient_id == patient_id,
        Appointment.start_at == start.astimezone(timezone.utc),
        Appointment.status == BOOKED,
    )
    if doctor_id is not None:
        query = query.where(Appointment.doctor_id == doctor_id)
    return session.scalars(query.limit(1)).first()


def own_active_appointment(session: Session, appointment_id: int, patient_id: int) -> Appointment:
    appointment = session.scalars(
        select(Appointment).where(
            Appointment.id == appointment_id,
            Appointment.patient_id == patient_id,
            Appointment.status == BOOKED,
        )
    ).one_or_none()
    if appointment is None:
        # The same answer for "not yours" and "no such": nothing leaks.
        raise AppointmentNotFoundError("no such active appointment for this patient")
    return appointment


def mark_cancelled(
    session: Session, clinic: Clinic, appointment: Appointment, staff_id: int | None = None
) -> None:
    """Cancels in the caller's transaction (`staff_id`: the staff member who did)."""
    appointment.status = CANCELLED
    appointment.cancelled_at = clinic.now()
    audit.record(
        session,
        audit.APPOINTMENT_CANCELLED,
        appointment_id=appointment.id,
        patient_id=appointment.patient_id,
        doctor_id=appointment.doctor_id,
        staff_id=staff_id,
    )


def _overlaps_booking(session: Session, doctor_id: int, start: datetime, end: datetime) -> bool:
    overlapping = select(Appointment.id).where(
        Appointment.doctor_id == doctor_id,
        Appointment.status == BOOKED,
        Appointment.start_at < end,
        Appointment.end_at > start,
    )
    return session.scalar(overlapping.limit(1)) is not None


@contextmanager
def conflicts_as_slot_taken() -> Iterator[None]:
    """Turns the database's refusal of a second booking into `SlotTakenError`."""
    try:
        yield
    except IntegrityError as error:
        if _is_slot_conflict(error):
            raise SlotTakenError("the slot was booked by someone else") from error
        raise


def _is_slot_conflict(error: IntegrityError) -> bool:
    pgcode = getattr(error.orig, "pgcode", None)
    if pgcode is not None:
        return pgcode in SLOT_CONFLICT_PGCODES
    return "UNIQUE constraint failed: appointments." in str(error.orig)
