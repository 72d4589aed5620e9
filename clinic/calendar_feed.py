"""A doctor's appointments and blocks as an iCalendar (RFC 5545) feed.

Patients appear only as "Appointment (M.)": a first-name initial, nothing more.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select

from clinic.availability import load_doctor
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import BOOKED, Appointment, BlockedTime, Patient

PRODUCT_ID = "-//clinic-dm//appointments//EN"


def doctor_calendar(clinic: Clinic, doctor_id: int, days_back: int = 30) -> str:
    """The feed text (CRLF lines): appointments and blocks from `days_back` days ago on."""
    since = clinic.now() - timedelta(days=days_back)
    with transaction(clinic.engine) as session:
        doctor = load_doctor(session, doctor_id)
        appointments = session.execute(
            select(Appointment, Patient.name)
            .join(Patient)
            .where(Appointment.doctor_id == doctor_id, Appointment.end_at >= since)
            .order_by(Appointment.start_at)
        ).all()
        blocks = session.scalars(
            select(BlockedTime)
            .where(
                or_(BlockedTime.doctor_id == doctor_id, BlockedTime.doctor_id.is_(None)),
                BlockedTime.end_at >= since,
            )
            .order_by(BlockedTime.start_at)
        ).all()
    stamp = _utc(clinic.now())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODUCT_ID}",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{_text(doctor.name)}",
    ]
    for appointment, name in appointments:
        initial = f" ({name.strip()[0].upper()}.)" if name and name.strip() else ""
        lines += _event(
            uid=f"appointment-{appointment.id}@clinic-dm",
            stamp=stamp,
            start=appointment.start_at,
            end=appointment.end_at,
            summary=f"Appointment{initial}",
            status="CONFIRMED" if appointment.status == BOOKED else "CANCELLED",
        )
    for block in blocks:
        lines += _event(
            uid=f"block-{block.id}@clinic-dm",
            stamp=stamp,
            start=block.start_at,
            end=block.end_at,
            summary=f"Blocked: {block.reason}" if block.reason else "Blocked",
            status="CONFIRMED",
        )
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _event(
    uid: str, stamp: str, start: datetime, end: datetime, summary: str, status: str
) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        f"SUMMARY:{_text(summary)}",
        f"STATUS:{status}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
    ]


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """RFC 5545 TEXT escaping."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str, limit: int = 75) -> str:
    """Folds a content line at 75 octets without splitting a UTF-8 character."""
    encoded = line.encode()
    if len(encoded) <= limit:
        return line
    parts, current = [], b""
    for char in line:
        piece = char.encode()
        if len(current) + len(piece) > (limit if not parts else limit - 1):
            parts.append(current.decode())
            current = b""
        current += piece
    parts.append(current.decode())
    return "\r\n ".join(parts)
