"""Erasing a patient: "delete my data" in the chat, or an admin in the console. Both are
this one function, so they erase the same things."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinic import audit, handoffs
from clinic.context import Clinic
from clinic.delivery import forget_sender
from clinic.models import Appointment, OutboxMessage, Patient, TextThread
from clinic.outbox import SMS
from clinic.patients import withdraw_in


def erase_in(session: Session, clinic: Clinic, patient: Patient) -> list[Appointment]:
    """Withdraws consent and erases the patient in the caller's transaction: their row,
    their upcoming appointments (cancelled; past ones stay, anonymous), their settled
    delivery records, their text messages and their hand-offs. The cancelled appointments."""
    instagram_id, phone = patient.instagram_id, patient.phone
    cancelled = withdraw_in(session, clinic, patient)
    if instagram_id is not None:
        hashed = audit.hash_id(instagram_id, clinic.settings.id_hash_key)
        forget_sender(session, instagram_id, hashed)
        handoffs.forget(session, instagram_id, hashed)
    if phone and not session.scalar(select(Patient.id).where(Patient.phone == phone).limit(1)):
        forget_texts(session, phone, audit.hash_id(phone, clinic.settings.id_hash_key))
    return cancelled


def forget_texts(session: Session, phone: str, hashed: str) -> None:
    """The text messages to a number, whatever their state, and the question asked there
    (kept when another patient on file shares the number: a family's phone)."""
    session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.channel == SMS, OutboxMessage.recipient_id.in_([phone, hashed]))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(TextThread).where(TextThread.phone == phone))
