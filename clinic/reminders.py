"""Reminders: due 24 h (REMINDER_LEAD_HOURS) before a visit, sent once, only when
Instagram lets them through.

Instagram accepts a business's message only within 24 hours of the patient's last
message. A reminder due outside that window waits ("window_closed") and goes out if
the patient writes again before the visit. Each reminder is claimed by one run with
a conditional UPDATE, so two `remind` processes never send it twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import BOOKED, Appointment, Doctor, Notification, Patient

logger = logging.getLogger(__name__)

# Instagram lets a business message a user only this long after the user's last message.
MESSAGING_WINDOW = timedelta(hours=24)
REMINDER = "reminder"

# Outcomes a sender reports, and what the job records.
SENT = "sent"
WINDOW_CLOSED = "window_closed"  # tried again if the patient writes before the visit
RECIPIENT_UNAVAILABLE = "recipient_unavailable"  # final
FAILED = "failed"  # retried next run
NOT_NEEDED = "not_needed"  # cancelled or consent withdrawn meanwhile; final
RETRYABLE = (WINDOW_CLOSED, FAILED)
FINAL = (SENT, RECIPIENT_UNAVAILABLE, NOT_NEEDED)
PENDING = "pending"
SENDING = "sending"
# A run that died mid-send leaves its claim; after this long another run may take it.
STALE_CLAIM = timedelta(minutes=10)

Sender = Callable[[str, str], str]  # (instagram id, text) -> one of the outcomes above


def reminder_due_at(start: datetime, lead: timedelta) -> datetime:
    return start - lead


def window_open(last_message_at: datetime | None, now: datetime) -> bool:
    return last_message_at is not None and now < last_message_at + MESSAGING_WINDOW


def reminder_deliverable(
    start: datetime, last_message_at: datetime | None, lead: timedelta
) -> bool:
    """True when the reminder falls due while the patient's messaging window is open."""
    if last_message_at is None:
        return False
    return reminder_due_at(start, lead) <= last_message_at + MESSAGING_WINDOW


@dataclass(frozen=True)
class RunReport:
    sent: int = 0
    window_closed: int = 0
    unavailable: int = 0
    failed: int = 0


def send_due_reminders(
    clinic: Clinic, send: Sender, render: Callable[[datetime, ZoneInfo], str]
) -> RunReport:
    """Sends every reminder that is due, open and not yet sent; returns what happened."""
    counts = {SENT: 0, WINDOW_CLOSED: 0, RECIPIENT_UNAVAILABLE: 0, FAILED: 0, NOT_NEEDED: 0}
    for appointment_id in _due_appointment_ids(clinic):
        outcome = _remind(clinic, appointment_id, send, render)
        if outcome is not None:
            counts[outcome] += 1
    return RunReport(
        counts[SENT], counts[WINDOW_CLOSED], counts[RECIPIENT_UNAVAILABLE], counts[FAILED]
    )


def _due_appointment_ids(clinic: Clinic) -> list[int]:
    now = clinic.now()
    lead = clinic.settings.reminder_lead
    with transaction(clinic.engine) as session:
        return list(
            session.scalars(
                select(Appointment.id)
                .outerjoin(
                    Notification,
                    (Notification.appointment_id == Appointment.id)
                    & (Notification.kind == REMINDER),
                )
                .where(
                    Appointment.status == BOOKED,
                    Appointment.start_at > now,
                    Appointment.start_at <= now + lead,
                    Notification.id.is_(None) | Notification.status.not_in(FINAL),
                )
                .order_by(Appointment.start_at)
            )
        )


def _remind(clinic: Clinic, appointment_id: int, send: Sender, render) -> str | None:
    token = _claim(clinic, appointment_id)
    if token is None:
        return None  # another run has it, or it is settled
    with transaction(clinic.engine) as session:
        appointment = session.get(Appointment, appointment_id)
        patient = session.get(Patient, appointment.patient_id)
        doctor = session.get(Doctor, appointment.doctor_id)
        recipient = patient.instagram_id
        cancelled = appointment.status != BOOKED or not patient.has_consented
        start, zone = appointment.start_at, ZoneInfo(doctor.timezone)
        last_message_at = patient.last_message_at
    if cancelled:
        outcome = NOT_NEEDED
    elif not window_open(last_message_at, clinic.now()):
        outcome = WINDOW_CLOSED
    else:
        outcome = send(recipient, render(start, zone))
    _settle(clinic, appointment_id, token, outcome, recipient)
    return outcome


def _claim(clinic: Clinic, appointment_id: int) -> str | None:
    """Takes the reminder for this run; None when another run holds it or it is final."""
    now = clinic.now()
    try:
        with transaction(clinic.engine) as session:
            session.add(
                Notification(
                    appointment_id=appointment_id,
                    kind=REMINDER,
                    status=PENDING,
                    attempts=0,
                    updated_at=now,
                )
            )
    except IntegrityError:
        pass  # the row exists already
    token = uuid.uuid4().hex
    with transaction(clinic.engine) as session:
        claimed = session.execute(
            update(Notification)
            .where(
                Notification.appointment_id == appointment_id,
                Notification.kind == REMINDER,
                (Notification.status.in_([PENDING, *RETRYABLE]))
                | (
                    (Notification.status == SENDING) & (Notification.claimed_at < now - STALE_CLAIM)
                ),
            )
            .values(status=SENDING, claim_token=token, claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return token if claimed.rowcount == 1 else None


def _settle(clinic: Clinic, appointment_id: int, token: str, outcome: str, recipient: str) -> None:
    with transaction(clinic.engine) as session:
        notification = session.scalars(
            select(Notification).where(
                Notification.appointment_id == appointment_id, Notification.claim_token == token
            )
        ).one()
        notification.status = outcome
        notification.attempts += outcome != WINDOW_CLOSED
        notification.claim_token = None
        notification.updated_at = clinic.now()
        if outcome == SENT:
            audit.record(
                session,
                audit.NOTIFICATION_SENT,
                appointment_id=appointment_id,
                recipient_hash=audit.hash_id(recipient, clinic.settings.id_hash_key),
                kind=REMINDER,
            )
    logger.info("reminder appointment=%s outcome=%s", appointment_id, outcome)
