"""Replies the outbox gave up on, for staff: listed with their patient, tried again, or
dismissed. The text is shown to staff in the console; it never reaches a log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import OUTBOX_FAILED, OUTBOX_PENDING, OutboxMessage, Patient


@dataclass(frozen=True)
class FailedReply:
    id: int
    created_at: datetime
    attempts: int
    error: str
    text: str  # what the reply said (a quick reply list or an attachment shows as such)
    patient_id: int | None
    patient_name: str
    ref: str  # the recipient's short reference, as in the logs
    channel: str = "instagram"  # or "sms"


def failed_replies(clinic: Clinic, limit: int = 200) -> list[FailedReply]:
    """The dead letters, newest first, each with its patient when one is on file (by
    Instagram id, or by phone for a text)."""
    with transaction(clinic.engine) as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OUTBOX_FAILED)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        ).all()
        recipients = {row.recipient_id for row in rows}
        patients = {}
        for patient in session.scalars(
            select(Patient).where(
                or_(Patient.instagram_id.in_(recipients), Patient.phone.in_(recipients))
            )
        ):
            patients.setdefault(patient.instagram_id, patient)
            patients.setdefault(patient.phone, patient)
    key = clinic.settings.id_hash_key
    found = []
    for row in rows:
        patient = patients.get(row.recipient_id)
        found.append(
            FailedReply(
                row.id,
                row.created_at,
                row.attempts,
                row.error or "",
                _text_of(row.body),
                patient.id if patient else None,
                (patient.name or "") if patient else "",
                audit.hash_id(row.recipient_id, key)[:8],
                row.channel,
            )
        )
    return found


def failed_count(clinic: Clinic) -> int:
    with transaction(clinic.engine) as session:
        return session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OUTBOX_FAILED)
        )


def retry_reply(clinic: Clinic, staff_id: int, reply_id: int) -> bool:
    """The reply waits to be sent again, with a fresh retry budget; False if it is not a
    dead letter (any more)."""
    with transaction(clinic.engine) as session:
        changed = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == reply_id,
                OutboxMessage.status == OUTBOX_FAILED,
                OutboxMessage.body.is_not(None),  # a sent text Twilio then failed: no words left
            )
            .values(
                status=OUTBOX_PENDING,
                attempts=0,
                lease_owner=None,
                lease_until=None,
                not_before=None,
                error=None,
                created_at=clinic.now(),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed:
            audit.record(session, audit.REPLY_RETRIED, staff_id=staff_id, reply=reply_id)
        return bool(changed)


def dismiss_reply(clinic: Clinic, staff_id: int, reply_id: int) -> bool:
    """The dead letter is deleted, its text with it."""
    with transaction(clinic.engine) as session:
        deleted = session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.id == reply_id, OutboxMessage.status == OUTBOX_FAILED)
            .execution_options(synchronize_session=False)
        ).rowcount
        if deleted:
            audit.record(session, audit.REPLY_DISMISSED, staff_id=staff_id, reply=reply_id)
        return bool(deleted)


def _text_of(body: object) -> str:
    message = body.get("message", body) if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return ""
    if isinstance(message.get("text"), str):
        return message["text"]
    return "(an attachment)" if "attachment" in message else ""
