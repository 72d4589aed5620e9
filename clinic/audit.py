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
# What staff do in the console (each row names the staff member's id).
STAFF_ADDED = "staff_added"
STAFF_DISABLED = "staff_disabled"
STAFF_LINK_ISSUED = "staff_link_issued"
STAFF_PASSWORD_SET = "staff_password_set"  # noqa: S105 - an event name
STAFF_SIGNED_IN = "staff_signed_in"
STAFF_SIGN_IN_FAILED = "staff_sign_in_failed"
STAFF_SIGNED_OUT = "staff_signed_out"
PATIENT_VIEWED = "patient_viewed"
PATIENT_ERASED = "patient_erased"
APPOINTMENT_MOVED = "appointment_moved"
TIME_BLOCKED = "time_blocked"
PATIENT_NOTIFIED = "patient_notified"
PATIENT_TO_CALL = "patient_to_call"
HANDOFF_GIVEN_BACK = "handoff_given_back"
REPLY_RETRIED = "reply_retried"
REPLY_DISMISSED = "reply_dismissed"
TEXT_CHANGED = "text_changed"
TEXTS_REFUSED = "texts_refused"
TEXTS_ACCEPTED = "texts_accepted"
APPOINTMENT_CONFIRMED = "appointment_confirmed"
SETUP_CHANGED = "setup_changed"
CALENDAR_LINK_ISSUED = "calendar_link_issued"  # a doctor's new calendar link; the old revoked

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
    staff_id: int | None = None,
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
            staff_id=staff_id,
            details=details,
        )
    )
    logger.info(
        "%s appointment=%s patient=%s doctor=%s staff=%s",
        name,
        appointment_id,
        patient_id,
        doctor_id,
        staff_id,
    )
