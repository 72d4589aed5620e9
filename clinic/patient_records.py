"""Patients as staff look them up: search by name or phone, one patient's record (each
look is an audit row), and erasure by an admin (the same erasure as "delete my data")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction, truncate_wal
from clinic.erasure import erase_in
from clinic.erasure_markers import finish
from clinic.errors import ClinicError
from clinic.models import BOOKED, Appointment, Doctor, Patient
from clinic.profile import Profile
from clinic.retention import forget_conversation

MIN_QUERY = 2
MAX_RESULTS = 50


class PatientNotFoundError(ClinicError):
    """No patient has this id (any more)."""


@dataclass(frozen=True)
class PatientSummary:
    id: int
    name: str
    phone: str
    on_instagram: bool
    next_visit: datetime | None


@dataclass(frozen=True)
class VisitLine:
    id: int
    start: datetime
    doctor: str
    visit: str
    status: str
    source: str


@dataclass(frozen=True)
class PatientRecord:
    id: int
    name: str
    phone: str
    on_instagram: bool
    consent_at: datetime | None
    consent_via: str
    last_message_at: datetime | None
    takes_texts: bool
    visits: list[VisitLine]


def search_patients(clinic: Clinic, query: str) -> list[PatientSummary]:
    """Patients whose name holds the words typed, or whose phone holds the digits typed
    (at least 3); by name."""
    text = " ".join(query.split()).lower()
    digits = re.sub(r"\D", "", query)
    if len(text) < MIN_QUERY:
        return []
    conditions = [func.lower(Patient.name).contains(text, autoescape=True)]
    if len(digits) >= 3:
        conditions.append(Patient.phone.contains(digits, autoescape=True))
    now = clinic.now()
    next_visit = (
        select(func.min(Appointment.start_at))
        .where(
            Appointment.patient_id == Patient.id,
            Appointment.status == BOOKED,
            Appointment.start_at > now,
        )
        .scalar_subquery()
    )
    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(Patient.id, Patient.name, Patient.phone, Patient.instagram_id, next_visit)
            .where(or_(*conditions))
            .order_by(Patient.name, Patient.id)
            .limit(MAX_RESULTS)
        ).all()
    return [
        PatientSummary(pid, name or "", phone or "", instagram is not None, _aware(nxt, clinic))
        for pid, name, phone, instagram, nxt in rows
    ]


def patient_record(
    clinic: Clinic, profile: Profile, staff_id: int, patient_id: int
) -> PatientRecord:
    """The patient's details and visits, newest first; recorded as viewed by `staff_id`."""
    names = {v.key: v.name for v in profile.visit_types}
    zone = clinic.settings.zone
    with transaction(clinic.engine) as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise PatientNotFoundError("no such patient")
        rows = session.execute(
            select(Appointment, Doctor.name)
            .join(Doctor, Doctor.id == Appointment.doctor_id)
            .where(Appointment.patient_id == patient_id)
            .order_by(Appointment.start_at.desc())
        ).all()
        audit.record(session, audit.PATIENT_VIEWED, patient_id=patient_id, staff_id=staff_id)
        return PatientRecord(
            patient.id,
            patient.name or "",
            patient.phone or "",
            patient.instagram_id is not None,
            patient.consent_at,
            patient.consent_via or "",
            patient.last_message_at,
            bool(patient.takes_texts),
            [
                VisitLine(
                    a.id,
                    a.start_at.astimezone(zone),
                    doctor,
                    names.get(a.visit_type or "", a.visit_type or ""),
                    a.status,
                    a.source,
                )
                for a, doctor in rows
            ],
        )


def erase_patient_record(
    clinic: Clinic, staff_id: int, patient_id: int, tracker_engine: Engine | None
) -> int:
    """An admin erases a patient, as "delete my data" does, their conversation in Rasa's
    SQL tracker store (`tracker_engine`) included; how many visits were cancelled. (A
    conversation kept in memory goes at its next save: the rasa server meets the marker.)"""
    with transaction(clinic.engine) as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise PatientNotFoundError("no such patient")
        instagram_id = patient.instagram_id
        cancelled = erase_in(session, clinic, patient)
        audit.record(session, audit.PATIENT_ERASED, staff_id=staff_id)
    if instagram_id is not None and tracker_engine is not None:
        forget_conversation(tracker_engine, instagram_id)
        hashed = audit.hash_id(instagram_id, clinic.settings.id_hash_key)
        with transaction(clinic.engine) as session:
            finish(session, hashed, [instagram_id])
    truncate_wal(clinic.engine)
    return len(cancelled)


def _aware(moment: datetime | None, clinic: Clinic) -> datetime | None:
    """A time from a raw column read (SQLite gives it naive, in UTC)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(clinic.settings.zone)


def set_texts(clinic: Clinic, staff_id: int, patient_id: int, takes: bool) -> None:
    """The patient told staff they do (or don't) want reminders by text message."""
    with transaction(clinic.engine) as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise PatientNotFoundError("no such patient")
        patient.takes_texts = int(takes)
        name = audit.TEXTS_ACCEPTED if takes else audit.TEXTS_REFUSED
        audit.record(session, name, patient_id=patient_id, staff_id=staff_id, via="staff")
