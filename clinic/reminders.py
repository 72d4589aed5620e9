"""Reminders: due 24 h (REMINDER_LEAD_HOURS) before a visit, put in the outbox once, where
they can arrive; the outbox sends them like any reply.

Instagram accepts a business's message only within 24 hours of the patient's last
message: a reminder due inside that window goes by Instagram; outside it, by text message
when the patient takes texts and Twilio is set up (`clinic/texting.py`). One that can go
neither way waits ("window_closed") and is queued if the patient writes again before the
visit. Queuing is a compare-and-set on the reminder's
`notifications` row in the transaction that stores the message, under an outbox key
unique to the appointment's reminder and try: two `remind` runs never queue it twice.
The outbox reports each reminder's fate back here (`note_delivery`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import audit, texting
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import BOOKED, Appointment, Doctor, Notification, Patient
from clinic.queues import one_writer_at_a_time

if TYPE_CHECKING:
    from clinic.outbox import Outbox

logger = logging.getLogger(__name__)

REMINDER = "reminder"
ORIGIN_PREFIX = "reminder:"

# A reminder's states.
PENDING = "pending"
QUEUED = "queued"  # in the outbox
SENT = "sent"
WINDOW_CLOSED = "window_closed"  # queued again if the patient writes before the visit
RECIPIENT_UNAVAILABLE = "recipient_unavailable"  # final
FAILED = "failed"  # the outbox gave up on it (a dead letter); final
NOT_NEEDED = "not_needed"  # cancelled or consent withdrawn meanwhile; final
QUEUEABLE = (PENDING, WINDOW_CLOSED)
# What the outbox's refusals mean for a reminder.
_REFUSALS = {"outside_window": WINDOW_CLOSED, "recipient_unavailable": RECIPIENT_UNAVAILABLE}

# (recipient id, text) -> the channel's message objects for it
Messages = Callable[[str], list[dict]]


def reminder_due_at(start: datetime, lead: timedelta) -> datetime:
    return start - lead


@dataclass(frozen=True)
class RunReport:
    queued: int = 0
    window_closed: int = 0


# (visit's start, zone, channel) -> the reminder's words for that channel
Render = Callable[[datetime, ZoneInfo, str], str]


def queue_due_reminders(
    clinic: Clinic, outbox: Outbox, render: Render, messages: Messages
) -> RunReport:
    """Puts every due reminder that can reach its patient in the outbox; returns what
    happened. `messages` turns a text into Instagram's message objects."""
    counts = {QUEUED: 0, WINDOW_CLOSED: 0, NOT_NEEDED: 0, None: 0}
    for appointment_id in _due_appointment_ids(clinic):
        counts[_queue(clinic, outbox, appointment_id, render, messages)] += 1
    return RunReport(counts[QUEUED], counts[WINDOW_CLOSED])


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
                    Notification.id.is_(None) | Notification.status.in_(QUEUEABLE),
                )
                .order_by(Appointment.start_at)
            )
        )


def _queue(clinic: Clinic, outbox: Outbox, appointment_id: int, render, messages) -> str | None:
    """The reminder's new state; None when another run changed it first."""
    now = clinic.now()
    _create(clinic, appointment_id, now)
    with transaction(clinic.engine) as session:
        appointment = session.get(Appointment, appointment_id)
        patient = session.get(Patient, appointment.patient_id)
        doctor = session.get(Doctor, appointment.doctor_id)
        row = session.scalars(
            select(Notification).where(
                Notification.appointment_id == appointment_id, Notification.kind == REMINDER
            )
        ).one()
        seen = (row.status, row.attempts)
        channel = texting.channel_now(
            now,
            patient.last_message_at if patient and patient.instagram_id else None,
            bool(patient and patient.takes_texts and patient.phone),
            clinic.settings.sms_configured,
        )
        recipient = None
        if appointment.status != BOOKED or patient is None or not patient.has_consented:
            state = NOT_NEEDED
        elif channel is None:
            state = WINDOW_CLOSED
        else:
            state = QUEUED
            recipient = patient.instagram_id if channel == texting.INSTAGRAM else patient.phone
            text = render(appointment.start_at, ZoneInfo(doctor.timezone), channel)
    if seen[0] not in QUEUEABLE:
        return None  # another run queued it meanwhile
    if state == seen[0] == WINDOW_CLOSED:
        return state
    try_number = seen[1] + (state == QUEUED)
    with one_writer_at_a_time(clinic.engine), clinic.engine.begin() as connection:
        changed = connection.execute(
            update(Notification)
            .where(
                Notification.appointment_id == appointment_id,
                Notification.kind == REMINDER,
                Notification.status == seen[0],
                Notification.attempts == seen[1],
            )
            .values(status=state, attempts=try_number, updated_at=now)
        )
        if changed.rowcount != 1:
            return None  # another run got there first
        if recipient is not None:
            from clinic.outbox import Reply  # the outbox reports back here: no import cycle

            origin = f"{ORIGIN_PREFIX}{appointment_id}:{try_number}"
            if channel == texting.SMS:
                replies = [Reply(recipient, origin, 0, {"text": text}, channel)]
            else:
                replies = [Reply(recipient, origin, n, m) for n, m in enumerate(messages(text))]
            outbox.store_in(connection, replies, now, lease=False)
    logger.info("reminder appointment=%s %s", appointment_id, state)
    return state


def _create(clinic: Clinic, appointment_id: int, now: datetime) -> None:
    try:
        with clinic.engine.begin() as connection:
            connection.execute(
                insert(Notification).values(
                    appointment_id=appointment_id,
                    kind=REMINDER,
                    status=PENDING,
                    attempts=0,
                    updated_at=now,
                )
            )
    except IntegrityError:
        pass  # the row exists already


def note_delivery(
    connection: Connection, origin: str | None, outcome: str, recipient_hash: str | None, now
) -> None:
    """The outbox settled a message of `origin`: when it is a reminder's, its state follows
    (`outcome`: "sent", or the refusal's reason), and a sent one is audited once."""
    if not origin or not origin.startswith(ORIGIN_PREFIX):
        return
    appointment_id = int(origin[len(ORIGIN_PREFIX) :].split(":")[0])
    state = _REFUSALS.get(outcome, FAILED) if outcome != SENT else SENT
    # A text can fail after it was sent (its delivery report): a sent reminder fails too.
    settled_from = (QUEUED, SENT) if state == FAILED else (QUEUED,)
    changed = connection.execute(
        update(Notification)
        .where(
            Notification.appointment_id == appointment_id,
            Notification.kind == REMINDER,
            Notification.status.in_(settled_from),
        )
        .values(status=state, updated_at=now)
    )
    if state == SENT and changed.rowcount == 1:
        with Session(bind=connection) as session:
            audit.record(
                session,
                audit.NOTIFICATION_SENT,
                appointment_id=appointment_id,
                recipient_hash=recipient_hash,
                kind=REMINDER,
            )
            session.flush()
    logger.info("reminder appointment=%s %s", appointment_id, state)
