"""Patients: search by name or phone, one patient's record, and erasure (admins)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clinic.patient_records import (
    PatientNotFoundError,
    erase_patient_record,
    patient_record,
    search_patients,
    set_texts,
)
from console.app import desk, error_page, staff_id


def search():  # noqa: ANN201 - a Flask view
    query = request.args.get("q", "").strip()[:100]
    results = search_patients(desk().clinic, query) if query else None
    return render_template("patients.html", query=query, results=results)


def record(patient_id: int):  # noqa: ANN201 - a Flask view
    try:
        found = patient_record(desk().clinic, desk().profile, staff_id(), patient_id)
    except PatientNotFoundError:
        return error_page(404, "There is no such patient (their details may have been erased).")
    return render_template("patient.html", patient=found)


def erase(patient_id: int):  # noqa: ANN201 - a Flask view
    """GET asks to confirm; POST erases, as the patient's own "delete my data" would."""
    try:
        found = patient_record(desk().clinic, desk().profile, staff_id(), patient_id)
    except PatientNotFoundError:
        return error_page(404, "There is no such patient (their details may have been erased).")
    if request.method == "GET":
        return render_template("erase.html", patient=found)
    cancelled = erase_patient_record(desk().clinic, staff_id(), patient_id, desk().tracker_engine)
    note = f" {cancelled} upcoming visit(s) were cancelled." if cancelled else ""
    flash(f"The patient's details and conversation are erased.{note}")
    return redirect(url_for("patients.search"), code=303)


def texts(patient_id: int):  # noqa: ANN201 - a Flask view
    """Texts on or off, as the patient asked staff."""
    takes = request.form.get("takes") == "1"
    try:
        set_texts(desk().clinic, staff_id(), patient_id, takes)
    except PatientNotFoundError:
        return error_page(404, "There is no such patient.")
    flash("Reminders by text message: on." if takes else "No more text messages to them.")
    return redirect(url_for("patients.record", patient_id=patient_id), code=303)
