"""Erasing a patient: "delete my data" in the chat, or an admin in the console. Both are
this one function, so they erase the same things."""

from __future__ import annotations

from sqlalchemy.orm import Session

from clinic import audit, handoffs
from clinic.context import Clinic
from clinic.delivery import forget_sender
from clinic.models import Appointment, Patient
from clinic.patients import withdraw_in


def erase_in(session: Session, clinic: Clinic, patient: Patient) -> list[Appointment]:
    """Withdraws consent and erases the patient in the caller's transaction: their row,
    their upcoming appointments (cancelled; past ones stay, anonymous), their settled
    delivery records and their hand-offs. The cancelled appointments."""
    instagram_id = patient.instagram_id
    cancelled = withdraw_in(session, clinic, patient)
    if instagram_id is not None:
        hashed = audit.hash_id(instagram_id, clinic.settings.id_hash_key)
        forget_sender(session, instagram_id, hashed)
        handoffs.forget(session, instagram_id, hashed)
    return cancelled
