"""Patients: consent first, then details; withdrawal erases them."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import lru_cache

import phonenumbers
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from clinic import audit
from clinic.booking import cancel_upcoming
from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import (
    InvalidNameError,
    InvalidPhoneError,
    NotConsentedError,
    PhoneNeedsAreaCodeError,
)
from clinic.models import (
    CONSENT_GRANTED,
    Appointment,
    Patient,
    UTCDateTime,
)

NAME_MAX_LENGTH = 100
PHONE_MAX_LENGTH = 40
# Letters and marks of any script, plus what names use between them.
_NAME_PUNCTUATION = set(" '’-._")


def find_patient(clinic: Clinic, instagram_id: str) -> Patient | None:
    with transaction(clinic.engine) as session:
        return patient_by_instagram_id(session, instagram_id)


def patient_by_instagram_id(session: Session, instagram_id: str) -> Patient | None:
    return session.scalars(
        select(Patient).where(Patient.instagram_id == instagram_id)
    ).one_or_none()


def record_consent(clinic: Clinic, instagram_id: str) -> Patient:
    """Creates the patient if needed and records consent (idempotent)."""
    try:
        return _record_consent(clinic, instagram_id)
    except IntegrityError:
        # Two first messages of one new patient raced; the other one created the row.
        return _record_consent(clinic, instagram_id)


def _record_consent(clinic: Clinic, instagram_id: str) -> Patient:
    with transaction(clinic.engine) as session:
        return consent_in(session, clinic, instagram_id)


def consent_in(session: Session, clinic: Clinic, instagram_id: str) -> Patient:
    """`record_consent` inside the caller's transaction."""
    patient = patient_by_instagram_id(session, instagram_id)
    if patient is None:
        return add_consented_patient(session, clinic, instagram_id)
    if patient.consent_status != CONSENT_GRANTED:
        _grant(session, clinic, patient)
    return patient


def add_consented_patient(session: Session, clinic: Clinic, instagram_id: str) -> Patient:
    """A new patient who has just consented; `IntegrityError` if the id is on file."""
    patient = Patient(instagram_id=instagram_id, created_at=clinic.now())
    session.add(patient)
    _grant(session, clinic, patient)
    return patient


def _grant(session: Session, clinic: Clinic, patient: Patient) -> None:
    patient.consent_status = CONSENT_GRANTED
    patient.consent_at = clinic.now()
    session.flush()
    audit.record(
        session,
        audit.CONSENT_GRANTED,
        patient_id=patient.id,
        recipient_hash=audit.hash_id(patient.instagram_id, clinic.settings.id_hash_key),
    )


def update_details(session: Session, instagram_id: str, name: str, phone: str) -> bool:
    """Stores checked details of a consented patient without reading the row first;
    False when no consented patient has this id."""
    updated = session.execute(
        update(Patient)
        .where(Patient.instagram_id == instagram_id, Patient.consent_status == CONSENT_GRANTED)
        .values(name=name, phone=phone)
        .execution_options(synchronize_session=False)
    )
    return updated.rowcount == 1


def save_details(clinic: Clinic, patient_id: int, name: str, phone: str) -> Patient:
    """Validates and stores name and phone (E.164) of a consented patient."""
    with transaction(clinic.engine) as session:
        return details_in(session, clinic, session.get(Patient, patient_id), name, phone)


def details_in(
    session: Session, clinic: Clinic, patient: Patient | None, name: str, phone: str
) -> Patient:
    """`save_details` for a patient loaded in the caller's transaction."""
    clean_name = normalize_name(name)
    clean_phone = normalize_phone(phone, clinic.settings.phone_default_region)
    if patient is None or not patient.has_consented:
        raise NotConsentedError("details are only stored after consent")
    patient.name = clean_name
    patient.phone = clean_phone
    return patient


def withdraw_consent(clinic: Clinic, instagram_id: str) -> list[Appointment]:
    """Erases the patient and cancels their upcoming appointments; returns those, so the
    conversation can say what happened."""
    with transaction(clinic.engine) as session:
        patient = patient_by_instagram_id(session, instagram_id)
        if patient is None:
            return []
        return withdraw_in(session, clinic, patient)


def withdraw_in(session: Session, clinic: Clinic, patient: Patient) -> list[Appointment]:
    """`withdraw_consent` for a patient loaded in the caller's transaction: the upcoming
    appointments are cancelled, the past ones kept without a patient, and the patient's row
    deleted. The audit keeps a keyed hash of the Instagram id, nothing more."""
    instagram_id = patient.instagram_id
    cancelled = cancel_upcoming(session, clinic, patient.id)
    session.execute(
        update(Appointment)
        .where(Appointment.patient_id == patient.id)
        .values(patient_id=None)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        audit.CONSENT_WITHDRAWN,
        patient_id=patient.id,
        recipient_hash=audit.hash_id(instagram_id, clinic.settings.id_hash_key)
        if instagram_id
        else None,
        cancelled_appointments=len(cancelled),
    )
    session.delete(patient)
    return cancelled


def note_message(clinic: Clinic, instagram_id: str, at: datetime | None = None) -> None:
    """Remembers when a known patient last wrote (it opens Instagram's 24-hour window)."""
    with transaction(clinic.engine) as session:
        note_messages_in(session, {instagram_id: at or clinic.now()})


def note_messages_in(connection: Session | Connection, latest: dict[str, datetime]) -> None:
    """`note_message` for several patients ({instagram id: time}) in the caller's
    transaction, in one statement (the channel's intake runs it); the time only ever moves
    forward."""
    if not latest:
        return
    params: dict[str, object] = {}
    for i, (instagram_id, at) in enumerate(latest.items()):
        params[f"id_{i}"], params[f"at_{i}"] = instagram_id, at
    connection.execute(_note_messages_statement(len(latest)), params)


@lru_cache(maxsize=64)
def _note_messages_statement(count: int) -> TextClause:
    at = (
        "CASE instagram_id " + " ".join(f"WHEN :id_{i} THEN :at_{i}" for i in range(count)) + " END"
    )
    ids = ", ".join(f":id_{i}" for i in range(count))
    return text(
        f"UPDATE patients SET last_message_at = {at} WHERE instagram_id IN ({ids}) "  # noqa: S608 - placeholders
        f"AND (last_message_at IS NULL OR last_message_at < {at})"
    ).bindparams(*(bindparam(f"at_{i}", type_=UTCDateTime()) for i in range(count)))


def normalize_name(raw: str) -> str:
    """A person's name, whitespace collapsed; refuses anything else with a clear reason."""
    name = " ".join(raw.split())
    if not name:
        raise InvalidNameError("the name is empty")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidNameError(f"the name is longer than {NAME_MAX_LENGTH} characters")
    if sum(ch.isalpha() for ch in name) < 2:
        raise InvalidNameError("the name has fewer than two letters")
    for ch in name:
        if ch not in _NAME_PUNCTUATION and unicodedata.category(ch)[0] not in "LM":
            raise InvalidNameError("the name may only hold letters, spaces, ' . - and _")
    return name


def normalize_phone(raw: str, region: str) -> str:
    """The number in E.164, read with `region` when it has no country code. It must be a
    valid number of its region (one someone can call), not merely of a possible length:
    "555 0100" has no area code and is refused as such."""
    text = raw.strip()
    if not text or len(text) > PHONE_MAX_LENGTH or not re.search(r"\d", text):
        raise InvalidPhoneError("not a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneError("not a phone number") from error
    if not phonenumbers.is_valid_number(number):
        if phonenumbers.is_possible_number(number) and not text.startswith("+"):
            raise PhoneNeedsAreaCodeError("the number has no area code")
        raise InvalidPhoneError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=10_000)  # a page of the week shows hundreds, the same ones again and again
def display_phone(e164: str, region: str) -> str:
    """A stored number as people read it: "(202) 555-0143" in the clinic's own region,
    "+44 20 7946 0958" from elsewhere; anything unreadable as it is."""
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return e164
    same_region = phonenumbers.region_code_for_number(number) == region
    style = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(
        number, style.NATIONAL if same_region else style.INTERNATIONAL
    )
