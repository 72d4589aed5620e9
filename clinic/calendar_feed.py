"""A doctor's appointments and blocks as an iCalendar (RFC 5545) feed, built with the
`icalendar` library, served to whoever holds the doctor's current link (clinic/feed_links.py).

Patients appear only as "Appointment (M.)": a first-name initial, nothing more; a patient
who erased their data leaves "Appointment". The feed is the same bytes while nothing in it
changed (each event's DTSTAMP is its own last change), so its hash is its ETag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from icalendar import Calendar, Event
from sqlalchemy import func, or_, select

from clinic.availability import load_doctor
from clinic.context import Clinic
from clinic.db import transaction
from clinic.doctors import active_doctors
from clinic.errors import UnknownDoctorError
from clinic.feed_links import doctor_for_token
from clinic.models import BOOKED, Appointment, BlockedTime, Patient

PRODUCT_ID = "-//clinic-dm//appointments//EN"
DAYS_BACK = 30


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str  # quoted, as HTTP sends it
    last_modified: datetime | None  # the latest booking or cancellation in the feed


def subscribed_feed(clinic: Clinic, doctor_id: int, token: str) -> Feed | None:
    """The doctor's feed when `token` is their current link's; None otherwise (a wrong or
    revoked token, another doctor's, no such doctor, an inactive one)."""
    if doctor_for_token(clinic, token) != doctor_id:
        return None
    try:
        return doctor_feed(clinic, doctor_id)
    except UnknownDoctorError:
        return None


def doctor_feed(clinic: Clinic, doctor_id: int, days_back: int = DAYS_BACK) -> Feed:
    """Appointments and blocks from `days_back` days ago on; `UnknownDoctorError` if none."""
    since = clinic.now() - timedelta(days=days_back)
    with transaction(clinic.engine) as session:
        doctor_name = load_doctor(session, doctor_id).name
        appointments = session.execute(
            select(
                Appointment.id,
                Appointment.start_at,
                Appointment.end_at,
                Appointment.status,
                func.coalesce(Appointment.cancelled_at, Appointment.created_at),
                Patient.name,
            )
            .outerjoin(Patient, Appointment.patient_id == Patient.id)
            .where(Appointment.doctor_id == doctor_id, Appointment.end_at >= since)
            .order_by(Appointment.start_at, Appointment.id)
        ).all()
        blocks = session.execute(
            select(BlockedTime.id, BlockedTime.start_at, BlockedTime.end_at, BlockedTime.reason)
            .where(
                or_(BlockedTime.doctor_id == doctor_id, BlockedTime.doctor_id.is_(None)),
                BlockedTime.end_at >= since,
            )
            .order_by(BlockedTime.start_at, BlockedTime.id)
        ).all()
    events = []
    for appointment_id, start, end, status, changed, name in appointments:
        initial = f" ({name.strip()[0].upper()}.)" if name and name.strip() else ""
        state = "CONFIRMED" if status == BOOKED else "CANCELLED"
        uid = f"appointment-{appointment_id}@clinic-dm"
        events.append(_event(uid, changed, start, end, f"Appointment{initial}", state))
    for block_id, start, end, reason in blocks:
        summary = f"Blocked: {reason}" if reason else "Blocked"
        # Blocks keep no change time: their start stands in, so the bytes stay the same.
        events.append(
            _event(f"block-{block_id}@clinic-dm", start, start, end, summary, "CONFIRMED")
        )
    body = _calendar_head(doctor_name) + b"".join(events) + b"END:VCALENDAR\r\n"
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    stamps = [row[4] for row in appointments]
    return Feed(body, etag, max(stamps) if stamps else None)


def warm_feeds(clinic: Clinic) -> int:
    """Builds every active doctor's feed once, filling the cache of serialized events; how
    many doctors."""
    with transaction(clinic.engine) as session:
        doctor_ids = [doctor.id for doctor in active_doctors(session)]
    for doctor_id in doctor_ids:
        doctor_feed(clinic, doctor_id)
    return len(doctor_ids)


def doctor_calendar(clinic: Clinic, doctor_id: int, days_back: int = DAYS_BACK) -> str:
    """The feed as text (CRLF lines), for the command line."""
    return doctor_feed(clinic, doctor_id, days_back).body.decode()


def _calendar_head(doctor_name: str) -> bytes:
    """The calendar's own lines, up to where its events go."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", doctor_name)
    return calendar.to_ical().removesuffix(b"END:VCALENDAR\r\n")


# Building an event with icalendar takes about 0.1 ms, so a year of a doctor's bookings
# would take half a second; an event's bytes change only when it does, so they are kept.
@lru_cache(maxsize=100_000)
def _event(
    uid: str, stamp: datetime, start: datetime, end: datetime, summary: str, status: str
) -> bytes:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("status", status)
    return event.to_ical()
