"""Book a caller: the doctor, the visit and the day, a free time, then who is calling."""

from __future__ import annotations

from datetime import date, datetime

from flask import flash, redirect, render_template, request, url_for

from clinic.application import ClinicApp
from clinic.errors import InvalidNameError, InvalidPhoneError, SlotTakenError, SlotUnavailableError
from clinic.front_desk import Caller, book_caller, free_starts, next_free_day
from clinic.profile import ProfileError
from clinic.templates import format_day
from console.app import desk, staff_id
from console.forms import BookingForm


def book():  # noqa: ANN201 - a Flask view
    """GET: the choice of doctor, visit and day, and that day's free times; POST: books."""
    choice = _choice(request.values)
    form = BookingForm()
    if request.method == "POST":
        if choice is None:
            return redirect(url_for("booking.book"), code=303)
        if form.validate_on_submit():
            done = _book(choice, form)
            if done is not None:
                return done
        return _page(choice, form, status=400)
    if choice is not None:
        form.doctor.data, form.visit.data = str(choice.doctor_id), choice.visit
        form.day.data = choice.day.isoformat()
        form.start.data = request.args.get("start")
    return _page(choice, form)


class _Choice:
    def __init__(self, doctor_id: int, visit: str, minutes: int, day: date):
        self.doctor_id, self.visit, self.minutes, self.day = doctor_id, visit, minutes, day


def _choice(values) -> _Choice | None:  # noqa: ANN001 - request.values or args
    """The doctor, visit and day the page asks about (the first doctor, their first visit
    and today where it names none); None when no doctor is set up."""
    doctors = {d.id: d for d in _doctors()}
    if not doctors:
        return None
    raw_doctor = values.get("doctor", "")
    wanted = int(raw_doctor) if raw_doctor.isdigit() else None
    doctor = doctors.get(wanted) or next(iter(doctors.values()))
    offered = desk_app().visits_offered_by([doctor])
    visit = next((v for v in offered if v.key == values.get("visit")), offered[0])
    try:
        day = date.fromisoformat(values.get("day", ""))
    except ValueError:
        start = _start(values.get("start"))
        day = (
            start.astimezone(desk().clinic.settings.zone).date() if start else desk().clinic.today()
        )
    return _Choice(doctor.id, visit.key, visit.minutes, day)


def _book(choice: _Choice, form: BookingForm):  # noqa: ANN202
    start = _start(form.start.data)
    if start is None:
        form.start.errors.append("Choose a time.")
        return None
    caller = Caller(form.name.data, form.phone.data, form.source.data)
    try:
        booked = book_caller(
            desk().clinic, desk().profile, staff_id(), choice.doctor_id, choice.visit, start, caller
        )
    except InvalidNameError as error:
        form.name.errors.append(f"Please check the name: {error}.")
    except InvalidPhoneError:
        form.phone.errors.append(
            "That is not a phone number we can call: include the area code, and the country "
            "code for numbers from abroad (+44 …)."
        )
    except SlotTakenError:
        form.start.errors.append(desk().templates.render("slot_taken", day=format_day(choice.day)))
    except (SlotUnavailableError, ProfileError):
        form.start.errors.append("That time is no longer free. Please choose another.")
    else:
        appointment = booked.appointment
        who = booked.patient_name
        note = " (already a patient with this phone number)" if booked.existing_patient else ""
        flash(f"Booked {who}{note}.")
        return redirect(url_for("visits.appointment", appointment_id=appointment.id), code=303)
    return None


def _page(choice: _Choice | None, form: BookingForm, status: int = 200):  # noqa: ANN202
    doctors = _doctors()
    visits = desk_app().visits_offered_by(
        [d for d in doctors if choice and d.id == choice.doctor_id] or doctors[:1]
    )
    page = render_template(
        "book.html",
        doctors=doctors,
        visits=visits,
        choice=choice,
        form=form,
        currency=desk().profile.currency,
        **_times(choice),
    )
    return page, status


def _times(choice: _Choice | None) -> dict:
    if choice is None:
        return {"starts": [], "next_day": None, "day": None}
    clinic = desk().clinic
    starts = free_starts(clinic, choice.doctor_id, choice.day, choice.minutes)
    next_day = None
    if not starts:
        next_day = next_free_day(clinic, choice.doctor_id, choice.day, choice.minutes)
    return {"starts": starts, "next_day": next_day, "day": choice.day}


def _doctors():  # noqa: ANN202
    return desk_app().active_doctors()


def desk_app() -> ClinicApp:
    """The core as the bot sees it (doctors and the visits they offer)."""
    return ClinicApp(desk().clinic, desk().templates, desk().profile)


def _start(raw: str | None) -> datetime | None:
    try:
        start = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return start if start is not None and start.tzinfo is not None else None
