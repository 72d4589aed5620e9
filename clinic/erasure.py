"""Erasing a patient: "delete my data" in the chat, or an admin in the console. Both come
here, so they erase the same things; the chat's request is honoured whether or not the
sender ever became a patient (what they wrote is kept in the conversation either way)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from clinic import audit, handoffs
from clinic.context import Clinic
from clinic.erasure_markers import clear_traces, mark
from clinic.models import Appointment, AuditEvent, OutboxMessage, Patient, TextThread
from clinic.outbox import SMS
from clinic.patients import patient_by_instagram_id, withdraw_in


@dataclass(frozen=True)
class Erased:
    """What a "delete my data" erased: `details` when the sender was a patient (or an
    earlier try of this request already erased them), and the visits it cancelled."""

    details: bool
    cancelled: list[Appointment]


def erase_sender_in(session: Session, clinic: Clinic, instagram_id: str) -> Erased:
    """A confirmed "delete my data", in the caller's transaction: the request is recorded
    (clinic/erasure_markers.py) with everything of the sender in the clinic's database
    erased, patient or not. Their conversation goes when the rasa server meets the marker."""
    first_try = mark(session, _hash(clinic, instagram_id), clinic.now())
    patient = patient_by_instagram_id(session, instagram_id)
    if patient is None:
        forget_sender_in(session, clinic, instagram_id)
        return Erased(details=not first_try, cancelled=[])
    return Erased(details=True, cancelled=erase_in(session, clinic, patient))


def erase_in(session: Session, clinic: Clinic, patient: Patient) -> list[Appointment]:
    """Withdraws consent and erases the patient in the caller's transaction: their row,
    their upcoming appointments (cancelled; past ones stay, anonymous, and no audit row
    names the patient or their hash any more), their delivery records, their text messages
    and their hand-offs. The cancelled appointments."""
    instagram_id, phone, patient_id = patient.instagram_id, patient.phone, patient.id
    cancelled = withdraw_in(session, clinic, patient)
    session.flush()  # the audit rows of the withdrawal too
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.patient_id == patient_id)
        .values(patient_id=None, recipient_hash=None)
        .execution_options(synchronize_session=False)
    )
    if instagram_id is not None:
        forget_sender_in(session, clinic, instagram_id)
    if phone and not session.scalar(select(Patient.id).where(Patient.phone == phone).limit(1)):
        hashed_phone = _hash(clinic, phone)
        forget_texts(session, phone, hashed_phone)
        clear_traces(session, hashed_phone, [phone])
    return cancelled


def forget_sender_in(session: Session, clinic: Clinic, instagram_id: str) -> None:
    """Marks the sender's erasure (once) and erases what the clinic's database holds of
    them besides a patient row: delivery records, hand-offs, their hash in audit rows."""
    hashed = _hash(clinic, instagram_id)
    mark(session, hashed, clinic.now())
    clear_traces(session, hashed, [instagram_id])
    handoffs.forget(session, instagram_id, hashed)


def forget_texts(session: Session, phone: str, hashed: str) -> None:
    """The text messages to a number, whatever their state, and the question asked there
    (kept when another patient on file shares the number: a family's phone)."""
    session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.channel == SMS, OutboxMessage.recipient_id.in_([phone, hashed]))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(TextThread).where(TextThread.phone == phone))


def _hash(clinic: Clinic, raw_id: str) -> str:
    return audit.hash_id(raw_id, clinic.settings.id_hash_key)
