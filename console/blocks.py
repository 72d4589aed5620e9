"""Block time (a sick afternoon, a holiday): first the visits it would fall on, then save it,
cancelling those visits with notice or keeping them."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from clinic.db import transaction
from clinic.doctors import active_doctors
from clinic.errors import UnknownDoctorError
from clinic.front_desk import BlockError, add_block, block_hits
from clinic.models import Doctor, Patient
from clinic.templates import format_day, format_time, format_when
from console.app import desk, staff_id
from console.forms import BlockForm

WHOLE_CLINIC = "clinic"


def new_block():  # noqa: ANN201 - a Flask view
    form = BlockForm()
    with transaction(desk().clinic.engine) as session:
        doctors = [(str(d.id), d.name) for d in active_doctors(session)]
    form.doctor.choices = [*doctors, (WHOLE_CLINIC, "The whole clinic")]
    if not form.is_submitted():
        form.day.data = form.day.data or desk().clinic.today()
        return render_template("block.html", form=form, hits=None)
    span = _span(form) if form.validate() else None
    if span is None:
        return render_template("block.html", form=form, hits=None), 400
    doctor_id, start, end = span
    hits = block_hits(desk().clinic, doctor_id, start, end)
    if hits and form.decision.data not in ("cancel", "keep"):
        return render_template("block.html", form=form, hits=_described(hits), start=start, end=end)
    try:
        changes = add_block(
            desk().clinic,
            desk().templates,
            staff_id(),
            doctor_id,
            start,
            end,
            form.reason.data,
            cancel_hits=form.decision.data == "cancel",
            profile=desk().profile,
        )
    except (BlockError, UnknownDoctorError) as error:
        form.day.errors.append(str(error))
        return render_template("block.html", form=form, hits=None), 400
    calls = [c for c in changes if c.notice and c.notice.channel == "call"]
    message = "Time blocked."
    if changes:
        message += f" {len(changes)} visit(s) cancelled; patients are being told."
        if calls:
            message += f" {len(calls)} must be called: see the list on the home page."
    elif hits:
        message += f" The {len(hits)} visit(s) in it were kept."
    flash(message)
    return redirect(url_for("week.today", day=start.date().isoformat()), code=303)


def _span(form: BlockForm) -> tuple[int | None, datetime, datetime] | None:
    """Who and when, in the clinic's zone; errors go next to their fields."""
    zone = desk().clinic.settings.zone
    who = form.doctor.data
    doctor_id = None if who == WHOLE_CLINIC else int(who) if (who or "").isdigit() else -1
    if doctor_id == -1:
        form.doctor.errors.append("Choose a doctor or the whole clinic.")
        return None
    start = datetime.combine(form.day.data, form.start_time.data or time(0), tzinfo=zone)
    end_day = form.end_day.data or form.day.data
    if form.end_time.data is not None:
        end = datetime.combine(end_day, form.end_time.data, tzinfo=zone)
    else:
        end = datetime.combine(end_day + timedelta(days=1), time(0), tzinfo=zone)
    if end <= start:
        form.end_time.errors.append("The end must be after the start.")
        return None
    return doctor_id, start, end


def _span_text(start: datetime, end: datetime) -> str:
    """ "All day on Fri, Dec 18", "Fri, Dec 18, 1:00 PM to 5:00 PM", or both ends in full."""
    zone = desk().clinic.settings.zone
    midnight = time(0)
    if start.time() == midnight and end.time() == midnight:
        last = (end - timedelta(days=1)).date()
        days = format_day(start.date()) + (
            "" if last == start.date() else f" to {format_day(last)}"
        )
        return f"All day, {days}"
    if start.date() == end.date():
        return f"{format_day(start.date())}, {format_time(start, zone)} to {format_time(end, zone)}"
    return f"{format_when(start, zone)} to {format_when(end, zone)}"


def _described(hits: list) -> list[dict]:
    clinic = desk().clinic
    zone = clinic.settings.zone
    with transaction(clinic.engine) as session:
        names = dict(session.execute(select(Doctor.id, Doctor.name)).all())
        ids = {a.patient_id for a in hits if a.patient_id}
        patients = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(ids)))}
    return [
        {
            "id": a.id,
            "start": a.start_at.astimezone(zone),
            "doctor": names.get(a.doctor_id, ""),
            "name": patients[a.patient_id].name if a.patient_id in patients else "",
            "phone": patients[a.patient_id].phone if a.patient_id in patients else "",
        }
        for a in hits
    ]
