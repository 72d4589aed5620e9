"""One appointment: its details and notices; cancel it or move it, the patient told."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from clinic import audit
from clinic.db import transaction
from clinic.errors import AppointmentNotFoundError, SlotTakenError, SlotUnavailableError
from clinic.front_desk import (
    Change,
    call_made,
    cancel_visit,
    free_starts,
    move_visit,
    notices_of,
)
from clinic.models import NOTICE_CALL, NOTICE_SMS, Appointment, Doctor, Patient
from clinic.patients import display_phone
from clinic.templates import format_day, format_when
from console.app import desk, error_page, staff_id
from console.forms import MoveForm


def appointment(appointment_id: int):  # noqa: ANN201 - a Flask view
    found = _load(appointment_id, viewed=True)
    if found is None:
        return error_page(404, "There is no such appointment.")
    return render_template(
        "appointment.html", visit=found, notices=notices_of(desk().clinic, appointment_id)
    )


def cancel(appointment_id: int):  # noqa: ANN201 - a Flask view
    found = _load(appointment_id)
    if found is None or found["status"] != "booked":
        return error_page(404, "This appointment is not active any more.")
    if request.method == "GET":
        return render_template("cancel.html", visit=found)
    try:
        change = cancel_visit(
            desk().clinic, desk().templates, staff_id(), appointment_id, desk().profile
        )
    except AppointmentNotFoundError:
        return error_page(404, "This appointment is not active any more.")
    flash(f"Cancelled the visit on {format_when(found['start'], _zone())}. {_told(change)}")
    return redirect(url_for("visits.appointment", appointment_id=appointment_id), code=303)


def move(appointment_id: int):  # noqa: ANN201 - a Flask view
    found = _load(appointment_id)
    if found is None or found["status"] != "booked":
        return error_page(404, "This appointment is not active any more.")
    day = _day(request.values.get("day")) or found["start"].date()
    form = MoveForm()
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        try:
            start = datetime.fromisoformat(form.start.data)
            change = move_visit(
                desk().clinic, desk().templates, staff_id(), appointment_id, start, desk().profile
            )
        except SlotTakenError:
            form.start.errors.append(desk().templates.render("slot_taken", day=format_day(day)))
        except (SlotUnavailableError, ValueError):
            form.start.errors.append("That time is no longer free. Please choose another.")
        else:
            moved = change.appointment
            flash(f"Moved to {format_when(moved.start_at, _zone())}. {_told(change)}")
            return redirect(url_for("visits.appointment", appointment_id=moved.id), code=303)
        status = 400
    elif request.method == "POST":
        status = 400
    starts = free_starts(
        desk().clinic, found["doctor_id"], day, found["minutes"], moving=appointment_id
    )
    page = render_template(
        "move.html",
        visit=found,
        form=form,
        day=day,
        starts=[s for s in starts if s != found["start"]],
        previous=day - timedelta(days=1),
        next=day + timedelta(days=1),
    )
    return page, status


def called(notice_id: int):  # noqa: ANN201 - a Flask view
    call_made(desk().clinic, staff_id(), notice_id)
    flash("Marked as called.")
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/", code=303)


def _told(change: Change) -> str:
    if change.notice is None:
        return "The patient erased their details, so there is no one to tell."
    if change.notice.channel == NOTICE_CALL:
        phone = display_phone(change.notice.phone, desk().clinic.settings.phone_default_region)
        return f"Instagram can't reach the patient now: please call them at {phone}."
    if change.notice.channel == NOTICE_SMS:
        return "The patient is being told by text message."
    return "The patient is being told by Instagram message."


def _load(appointment_id: int, viewed: bool = False) -> dict | None:
    """The appointment with its patient and doctor (`viewed`: an audit row says who looked)."""
    clinic = desk().clinic
    names = {v.key: v.name for v in desk().profile.visit_types}
    with transaction(clinic.engine) as session:
        row = session.execute(
            select(Appointment, Doctor.name, Patient)
            .join(Doctor, Doctor.id == Appointment.doctor_id)
            .outerjoin(Patient, Patient.id == Appointment.patient_id)
            .where(Appointment.id == appointment_id)
        ).first()
        if row is None:
            return None
        visit, doctor, patient = row
        if viewed and patient is not None:
            audit.record(
                session,
                audit.PATIENT_VIEWED,
                appointment_id=visit.id,
                patient_id=patient.id,
                staff_id=staff_id(),
            )
        zone = _zone()
        return {
            "id": visit.id,
            "status": visit.status,
            "start": visit.start_at.astimezone(zone),
            "end": visit.end_at.astimezone(zone),
            "minutes": int((visit.end_at - visit.start_at).total_seconds() // 60),
            "doctor_id": visit.doctor_id,
            "doctor": doctor,
            "visit": names.get(visit.visit_type or "", visit.visit_type or "Visit"),
            "source": visit.source,
            "patient_id": patient.id if patient else None,
            "name": patient.name if patient else "",
            "phone": patient.phone if patient else "",
            "on_instagram": bool(patient and patient.instagram_id),
            "cancelled_at": visit.cancelled_at,
            "confirmed_at": visit.confirmed_at,
        }


def _zone():  # noqa: ANN202
    return desk().clinic.settings.zone


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
