"""Reminders: due 24 h (REMINDER_LEAD_HOURS) before a visit, put in the outbox once, only
when Instagram would let them through; the outbox sends them like any reply.

Instagram accepts a business's message only within 24 hours of the patient's last
message. A reminder due outside that window waits ("window_closed") and is queued if the
patient writes again before the visit. Queuing is a compare-and-set on the reminder's
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

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import BOOKED, Appointment, Doctor, Notification, Patient
from clinic.queues import one_writer_at_a_time

if TYPE_CHECKING:
    from clinic.outbox import Outbox

logger = logging.getLogger(__name__)

# Instagram lets a business message a user only this long after the user's last message.
MESSAGING_WINDOW = timedelta(hours=24)
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
    queued: int = 0
    window_closed: int = 0


def queue_due_reminders(
    clinic: Clinic,
    outbox: Outbox,
    render: Callable[[datetime, ZoneInfo], str],
    messages: Messages,
) -> RunReport:
    """Puts every due reminder whose patient's window is open in the outbox; returns what
    happened. `messages` turns a text into the channel's message objects."""
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
        recipient, text = patient.instagram_id, None
        if appointment.status != BOOKED or not patient.has_consented:
            state = NOT_NEEDED
        elif not window_open(patient.last_message_at, now):
            state = WINDOW_CLOSED
        else:
            state = QUEUED
            text = render(appointment.start_at, ZoneInfo(doctor.timezone))
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
        if text is not None:
            from clinic.outbox import Reply  # the outbox reports back here: no import cycle

            origin = f"{ORIGIN_PREFIX}{appointment_id}:{try_number}"
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
    changed = connection.execute(
        update(Notification)
        .where(
            Notification.appointment_id == appointment_id,
            Notification.kind == REMINDER,
            Notification.status == QUEUED,
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
