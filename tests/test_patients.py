"""Consent, details and withdrawal."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from clinic.booking import book, upcoming
from clinic.db import transaction
from clinic.errors import (
    InvalidNameError,
    InvalidPhoneError,
    NotConsentedError,
    PhoneNeedsAreaCodeError,
)
from clinic.models import AuditEvent, Patient
from clinic.patients import (
    find_patient,
    normalize_name,
    normalize_phone,
    note_message,
    record_consent,
    save_details,
    withdraw_consent,
)
from tests.conftest import TEST_NAME, TEST_PHONE
from tests.factories import add_doctor, add_patient

NEW_YORK = ZoneInfo("America/New_York")


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 202 555 0143", "US", "+12025550143"),
        ("202 555 0143", "US", "+12025550143"),
        ("(212) 555-0199", "US", "+12125550199"),
        ("212.555.0199", "US", "+12125550199"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("030 901820", "DE", "+4930901820"),
        ("  +1 212 555 0199  ", "US", "+12125550199"),
    ],
)
def test_phone_numbers_are_stored_as_e164(raw, region, e164):
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    "raw", ["", "hello", "12345", "+1 212", "9" * 60, "+999 1234567", "+10000000000", "+1 555 0100"]
)
def test_impossible_phone_numbers_are_refused(raw):
    with pytest.raises(InvalidPhoneError):
        normalize_phone(raw, "US")


@pytest.mark.parametrize("raw", ["555 0100", "5550143", "555-0199"])
def test_a_local_number_without_area_code_is_asked_again_with_it(raw):
    with pytest.raises(PhoneNeedsAreaCodeError):
        normalize_phone(raw, "US")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  PATIENT_TEST ", "PATIENT_TEST"),
        ("Patient-Test  O'Test", "Patient-Test O'Test"),
        ("Pátient Tëst Ñ", "Pátient Tëst Ñ"),
        ("测试病人", "测试病人"),
        ("J. R. R.", "J. R. R."),
        ("Li", "Li"),
    ],
)
def test_names_of_any_script_are_accepted(raw, clean):
    assert normalize_name(raw) == clean


@pytest.mark.parametrize(
    "raw", ["", "  ", "x", "1234", "a" * 101, "x<script>", "a\x00b", "name; --", "Patient 🙂"]
)
def test_things_that_are_not_names_are_refused(raw):
    with pytest.raises(InvalidNameError):
        normalize_name(raw)


def test_consent_creates_the_patient_once_with_one_audit_row(clinic):
    first = record_consent(clinic, "IG_1")
    again = record_consent(clinic, "IG_1")
    assert first.id == again.id and first.consent_status == "granted"
    assert first.consent_at == clinic.now()
    with transaction(clinic.engine) as session:
        events = session.scalars(select(AuditEvent)).all()
    assert [e.name for e in events] == ["consent_granted"]
    assert events[0].recipient_hash and "IG_1" not in events[0].recipient_hash


def test_details_need_consent(clinic):
    with pytest.raises(NotConsentedError):
        save_details(clinic, 1, TEST_NAME, TEST_PHONE)
    patient = add_patient(clinic, "IG_1")
    assert (patient.name, patient.phone) == (TEST_NAME, TEST_PHONE)


def test_withdrawal_erases_details_and_cancels_only_upcoming_appointments(any_clinic, clock):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic, "IG_1")
    tuesday = date(2026, 2, 3)
    past = book(any_clinic, doctor, patient.id, at(tuesday, 9))
    future = book(any_clinic, doctor, patient.id, at(tuesday + timedelta(days=1), 9))
    clock.advance(timedelta(days=1, hours=2))  # Tuesday 10:00: the first visit is over
    cancelled = withdraw_consent(any_clinic, "IG_1")
    assert [a.id for a in cancelled] == [future.id]
    with transaction(any_clinic.engine) as session:
        stored = session.get(Patient, patient.id)
        kept = {a: session.get(type(past), a) for a in (past.id, future.id)}
        names = [e.name for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert stored is None  # erasure deletes the patient
    assert {a: (v.status, v.patient_id) for a, v in kept.items()} == {
        past.id: ("booked", None),  # the visit stays in the books, anonymous
        future.id: ("cancelled", None),
    }
    assert names[-2:] == ["appointment_cancelled", "consent_withdrawn"]
    assert find_patient(any_clinic, "IG_1") is None
    assert upcoming(any_clinic, patient.id) == []
    # Coming back later starts over with a new consent.
    assert record_consent(any_clinic, "IG_1").id != patient.id


def test_withdrawal_of_an_unknown_user_stores_nothing(clinic):
    assert withdraw_consent(clinic, "IG_NOBODY") == []
    assert find_patient(clinic, "IG_NOBODY") is None


def test_note_message_only_touches_known_patients(clinic, clock):
    note_message(clinic, "IG_STRANGER")
    assert find_patient(clinic, "IG_STRANGER") is None
    add_patient(clinic, "IG_1")
    note_message(clinic, "IG_1")
    assert find_patient(clinic, "IG_1").last_message_at == clock()


def test_audit_rows_and_logs_never_hold_names_phones_or_instagram_ids(any_clinic, caplog):
    caplog.set_level(logging.DEBUG)
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic, "IG_PRIVATE_77")
    appointment = book(any_clinic, doctor, patient.id, at(date(2026, 2, 3), 9))
    withdraw_consent(any_clinic, "IG_PRIVATE_77")
    with transaction(any_clinic.engine) as session:
        rows = [
            repr((e.name, e.recipient_hash, e.details)) for e in session.scalars(select(AuditEvent))
        ]
    assert len(rows) == 4
    for text in [*rows, caplog.text]:
        for secret in (TEST_NAME, TEST_PHONE, "IG_PRIVATE_77"):
            assert secret not in text
    assert f"appointment={appointment.id}" in caplog.text


def test_phones_read_as_people_write_them():
    from clinic.patients import display_phone

    assert display_phone("+12025550143", "US") == "(202) 555-0143"
    assert display_phone("+442079460958", "US") == "+44 20 7946 0958"
    assert display_phone("not a number", "US") == "not a number"
