"""Audit rows and the hashing of recipient ids: ids and event names only."""

from __future__ import annotations

import hashlib
import hmac
import logging

from sqlalchemy.orm import Session

from clinic.models import AuditEvent

APPOINTMENT_BOOKED = "appointment_booked"
APPOINTMENT_CANCELLED = "appointment_cancelled"
CONSENT_GRANTED = "consent_granted"
CONSENT_WITHDRAWN = "consent_withdrawn"
NOTIFICATION_SENT = "notification_sent"
HANDOFF_REQUESTED = "handoff_requested"

logger = logging.getLogger("clinic.audit")


def hash_id(raw_id: str, key: str) -> str:
    """A keyed hash of an external id (an Instagram id): stable, not reversible."""
    return hmac.new(key.encode(), raw_id.encode(), hashlib.sha256).hexdigest()[:32]


def record(
    session: Session,
    name: str,
    *,
    appointment_id: int | None = None,
    patient_id: int | None = None,
    doctor_id: int | None = None,
    recipient_hash: str | None = None,
    **details: str | int | None,
) -> None:
    """Adds an audit row to the caller's transaction and logs the same ids."""
    session.add(
        AuditEvent(
            name=name,
            appointment_id=appointment_id,
            patient_id=patient_id,
            doctor_id=doctor_id,
            recipient_hash=recipient_hash,
            details=details,
        )
    )
    logger.info(
        "%s appointment=%s patient=%s doctor=%s", name, appointment_id, patient_id, doctor_id
    )
