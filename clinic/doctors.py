"""Which doctors the bot books with."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.errors import UnknownDoctorError
from clinic.models import Doctor
from clinic.settings import Settings


def booking_doctor(session: Session, settings: Settings) -> Doctor:
    """`DEFAULT_DOCTOR_ID` if set, else the active doctor with the lowest id."""
    wanted = settings.default_doctor_id
    query = select(Doctor).where(Doctor.active == 1).order_by(Doctor.id)
    if wanted is not None:
        query = query.where(Doctor.id == wanted)
    doctor = session.scalars(query.limit(1)).first()
    if doctor is None:
        raise UnknownDoctorError(
            "no active doctor: run `python -m clinic seed --demo` or add one"
            if wanted is None
            else f"DEFAULT_DOCTOR_ID={wanted} is not an active doctor"
        )
    return doctor


def bookable_doctors(session: Session, settings: Settings) -> list[Doctor]:
    """The doctors patients can book with: DEFAULT_DOCTOR_ID alone when it is set, else
    every active doctor, lowest id first."""
    if settings.default_doctor_id is not None:
        return [booking_doctor(session, settings)]
    return active_doctors(session)


def active_doctors(session: Session) -> list[Doctor]:
    """Every active doctor, lowest id first."""
    return list(session.scalars(select(Doctor).where(Doctor.active == 1).order_by(Doctor.id)))
