"""Doctors (admins): add one, set their hours (several ranges a day), slot length and
visits, date overrides; deactivate or delete."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, url_for

from clinic.context import Clinic
from clinic.doctor_setup import (
    DoctorSetup,
    SetupError,
    clear_override,
    delete_doctor,
    doctor_setup,
    doctor_setups,
    overrides_of,
    parse_ranges,
    save_doctor,
    set_active,
    set_override,
    show_ranges,
    upcoming_visits,
)
from clinic.errors import UnknownDoctorError
from clinic.feed_links import feed_url, link_issued_at, rotate_feed
from clinic.profile_store import all_visit_types
from clinic.templates import format_day
from console.app import desk, error_page, staff_id
from console.forms import DoctorForm, OverrideForm


def listing():  # noqa: ANN201 - a Flask view
    visits = {v.key: v.name for v, _ in all_visit_types(desk().clinic)}
    return render_template(
        "setup/doctors.html", doctors=doctor_setups(desk().clinic), visits=visits, show=show_ranges
    )


def new():  # noqa: ANN201 - a Flask view
    return _edit(None)


def edit(doctor_id: int):  # noqa: ANN201 - a Flask view
    return _edit(doctor_id)


def _edit(doctor_id: int | None):  # noqa: ANN202
    clinic = desk().clinic
    try:
        current = doctor_setup(clinic, doctor_id) if doctor_id is not None else None
    except UnknownDoctorError:
        return error_page(404, "There is no such doctor.")
    form = DoctorForm()
    form.visits.choices = offered = _offered(clinic)
    if not form.is_submitted():
        _fill(form, current, [key for key, _ in offered[:1]])
    elif form.validate():
        setup = _read(form, doctor_id)
        if setup is not None:
            try:
                saved = save_doctor(clinic, staff_id(), setup)
            except SetupError as error:
                form.slot_minutes.errors.append(str(error).capitalize() + ".")
            else:
                flash(f"Saved {setup.name}. The bot offers their times from its next message.")
                return redirect(url_for("doctors.edit", doctor_id=saved), code=303)
    status = 400 if form.is_submitted() else 200
    return _page(form, current, no_visit_types=not offered), status


def new_calendar_link(doctor_id: int):  # noqa: ANN201 - a Flask view
    """A new calendar link for the doctor, shown on their page this once (only its hash is
    kept, so no redirect could show it again); the old link stops working."""
    clinic = desk().clinic
    try:
        token = rotate_feed(clinic, doctor_id, staff_id())
        current = doctor_setup(clinic, doctor_id)
    except UnknownDoctorError:
        return error_page(404, "There is no such doctor.")
    form = DoctorForm(formdata=None)
    form.visits.choices = _offered(clinic)
    _fill(form, current, [])
    return _page(form, current, calendar_link=feed_url(clinic.settings, doctor_id, token))


def _page(form: DoctorForm, current: DoctorSetup | None, **shown: object) -> str:
    clinic, doctor_id = desk().clinic, current.id if current else None
    return render_template(
        "setup/doctor.html",
        form=form,
        doctor=current,
        overrides=overrides_of(clinic, doctor_id, clinic.today()) if doctor_id else [],
        override_form=OverrideForm(formdata=None),
        staying=upcoming_visits(clinic, doctor_id) if doctor_id else [],
        link_issued_at=link_issued_at(clinic, doctor_id) if doctor_id else None,
        show=show_ranges,
        **shown,
    )


def add_override(doctor_id: int):  # noqa: ANN201 - a Flask view
    form = OverrideForm()
    if form.validate_on_submit():
        try:
            ranges = parse_ranges(form.hours.data or "")
            set_override(desk().clinic, staff_id(), doctor_id, form.day.data, ranges)
        except SetupError as error:
            flash(f"Not saved: {error}.")
        except UnknownDoctorError:
            return error_page(404, "There is no such doctor.")
        else:
            what = "a day off" if not ranges else show_ranges(ranges)
            flash(f"On {format_day(form.day.data)}: {what}.")
    else:
        flash("Not saved: " + " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(url_for("doctors.edit", doctor_id=doctor_id), code=303)


def remove_override(doctor_id: int, day: str):  # noqa: ANN201 - a Flask view
    try:
        clear_override(desk().clinic, staff_id(), doctor_id, date.fromisoformat(day))
    except ValueError:
        return error_page(404, "There is no such date.")
    flash("The usual hours are back for that date.")
    return redirect(url_for("doctors.edit", doctor_id=doctor_id), code=303)


def activate(doctor_id: int):  # noqa: ANN201 - a Flask view
    return _set_active(doctor_id, True)


def deactivate(doctor_id: int):  # noqa: ANN201 - a Flask view
    return _set_active(doctor_id, False)


def _set_active(doctor_id: int, active: bool):  # noqa: ANN202
    try:
        set_active(desk().clinic, staff_id(), doctor_id, active)
    except UnknownDoctorError:
        return error_page(404, "There is no such doctor.")
    staying = upcoming_visits(desk().clinic, doctor_id)
    if active:
        flash("Active again: the bot offers their times.")
    elif staying:
        flash(
            f"Deactivated: the bot no longer offers their times. Their {len(staying)} booked "
            "visit(s) stay: move or cancel them from the list below."
        )
    else:
        flash("Deactivated: the bot no longer offers their times.")
    return redirect(url_for("doctors.edit", doctor_id=doctor_id), code=303)


def delete(doctor_id: int):  # noqa: ANN201 - a Flask view
    try:
        delete_doctor(desk().clinic, staff_id(), doctor_id)
    except SetupError as error:
        flash(str(error).capitalize() + ".")
        return redirect(url_for("doctors.edit", doctor_id=doctor_id), code=303)
    except UnknownDoctorError:
        return error_page(404, "There is no such doctor.")
    flash("Deleted.")
    return redirect(url_for("doctors.listing"), code=303)


def _offered(clinic: Clinic) -> list[tuple[str, str]]:
    """The visit types a doctor can be given: the active ones, as (key, name)."""
    return [(v.key, v.name) for v, active in all_visit_types(clinic) if active]


def _fill(form: DoctorForm, current: DoctorSetup | None, default_visits: list[str]) -> None:
    if current is None:
        form.slot_minutes.data = 30
        form.visits.data = default_visits
        return
    form.name.data, form.slot_minutes.data = current.name, current.slot_minutes
    form.visits.data = list(current.visit_keys)
    for weekday, field in enumerate(DoctorForm.DAYS):
        form[field].data = show_ranges(current.weekly.get(weekday, []))


def _read(form: DoctorForm, doctor_id: int | None) -> DoctorSetup | None:
    """The form as a doctor's setup; None when a field is wrong (its error is set)."""
    weekly, ok = {}, True
    for weekday, field in enumerate(DoctorForm.DAYS):
        try:
            ranges = parse_ranges(form[field].data or "")
        except SetupError as error:
            form[field].errors.append(str(error).capitalize() + ".")
            ok = False
            continue
        if ranges:
            weekly[weekday] = ranges
    minutes = form.slot_minutes.data
    if minutes is None or not 5 <= minutes <= 480:
        form.slot_minutes.errors.append("The slot length must be 5 to 480 minutes.")
        ok = False
    if not form.visits.data and form.visits.choices:
        form.visits.errors.append("Choose at least one visit type.")
        ok = False
    if not ok:
        return None
    return DoctorSetup(doctor_id, form.name.data, minutes, tuple(form.visits.data), weekly)
