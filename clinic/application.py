"""The use cases the adapters call: the action server, the channel, the CLI.

Each is keyed by what an adapter knows (a patient's Instagram id, a day, a start time)
and runs in one transaction, so an action makes one call and never sees a session.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from clinic import audit
from clinic.availability import days_with_slots, slots_in_session
from clinic.booking import (
    cancel_in,
    conflicts_as_slot_taken,
    insert_booking,
    reschedule_in,
    upcoming_in,
)
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.delivery import forget_sender
from clinic.doctors import booking_doctor
from clinic.errors import AppointmentNotFoundError, NotConsentedError
from clinic.models import Appointment, Patient, utc_now
from clinic.patients import (
    add_consented_patient,
    consent_in,
    details_in,
    normalize_name,
    normalize_phone,
    patient_by_instagram_id,
    update_details,
    withdraw_in,
)
from clinic.reminders import reminder_deliverable
from clinic.settings import Settings
from clinic.templates import Templates, templates_for


@dataclass(frozen=True)
class PatientView:
    """What the conversation needs to know of a patient."""

    consented: bool
    has_details: bool
    first_name: str | None

    @classmethod
    def of(cls, patient: Patient) -> PatientView:
        first_name = patient.name.split()[0] if patient.name else None
        return cls(patient.has_consented, patient.has_details, first_name)

    @property
    def on_file(self) -> bool:
        """Consent and details are stored: nothing needs asking."""
        return self.consented and self.has_details


@dataclass(frozen=True)
class DaySlots:
    day: date
    slots: list[datetime]


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    zone: ZoneInfo  # the zone the patient reads times in
    reminder_deliverable: bool
    moved: bool


class ClinicApp:
    """The booking core as the adapters see it."""

    def __init__(self, clinic: Clinic, templates: Templates | None = None):
        self.clinic = clinic
        self.templates = templates or templates_for(clinic.settings)

    @classmethod
    def from_settings(cls, settings: Settings, clock=utc_now) -> ClinicApp:
        """The composition roots' way in: one engine for the process."""
        return cls(Clinic(create_database_engine(settings.database_url), settings, clock))

    @property
    def settings(self) -> Settings:
        return self.clinic.settings

    @property
    def zone(self) -> ZoneInfo:
        return self.clinic.settings.zone

    def now(self) -> datetime:
        return self.clinic.now()

    def today(self) -> date:
        return self.clinic.today()

    def last_bookable_day(self) -> date:
        return self.clinic.last_bookable_day()

    # --- patients -----------------------------------------------------------------

    def patient(self, instagram_id: str) -> PatientView | None:
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            return None if patient is None else PatientView.of(patient)

    def grant_consent(self, instagram_id: str) -> PatientView:
        """Records consent, creating the patient (idempotent). A new patient, the usual
        case, costs one insert and no read."""
        try:
            with transaction(self.clinic.engine) as session:
                return PatientView.of(add_consented_patient(session, self.clinic, instagram_id))
        except IntegrityError:
            # On file already, or two first messages of one new patient raced.
            with transaction(self.clinic.engine) as session:
                return PatientView.of(consent_in(session, self.clinic, instagram_id))

    def save_details(self, instagram_id: str, name: str, phone: str) -> PatientView:
        """Stores name and phone, recording consent first if it is not on file yet."""
        clean_name = normalize_name(name)
        clean_phone = normalize_phone(phone, self.settings.phone_default_region)
        with transaction(self.clinic.engine) as session:
            if update_details(session, instagram_id, clean_name, clean_phone):
                return PatientView(True, True, clean_name.split()[0])
        with transaction(self.clinic.engine) as session:
            patient = consent_in(session, self.clinic, instagram_id)
            return PatientView.of(details_in(session, self.clinic, patient, name, phone))

    def erase_patient(self, instagram_id: str) -> list[Appointment] | None:
        """Withdraws consent and erases the patient, with their settled delivery records;
        the cancelled appointments, or None when nothing was stored. (Their conversation in
        Rasa's tracker store goes when the turn that asked for this is saved.)"""
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None:
                return None
            cancelled = withdraw_in(session, self.clinic, patient)
            hashed = audit.hash_id(instagram_id, self.settings.id_hash_key)
            forget_sender(session, instagram_id, hashed)
            return cancelled

    def request_handoff(self, instagram_id: str) -> None:
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            audit.record(
                session,
                audit.HANDOFF_REQUESTED,
                patient_id=patient.id if patient else None,
                recipient_hash=audit.hash_id(instagram_id, self.settings.id_hash_key),
            )

    # --- free times ---------------------------------------------------------------

    def days_with_slots(self, from_day: date, count: int) -> list[date]:
        """Up to `count` days from `from_day` on that have a free slot."""
        with transaction(self.clinic.engine) as session:
            doctor = booking_doctor(session, self.settings)
            days = days_with_slots(session, self.clinic, doctor, from_day)
            return [day for day, _ in itertools.islice(days, max(count, 0))]

    def first_day_with_slots(self, from_day: date) -> DaySlots | None:
        """`from_day` if it has free slots, else the next day that has some."""
        with transaction(self.clinic.engine) as session:
            doctor = booking_doctor(session, self.settings)
            found = next(days_with_slots(session, self.clinic, doctor, from_day), None)
        return None if found is None else DaySlots(*found)

    def slots_on(self, day: date) -> list[datetime]:
        with transaction(self.clinic.engine) as session:
            doctor = booking_doctor(session, self.settings)
            return slots_in_session(session, self.clinic, doctor, day)

    # --- appointments ---------------------------------------------------------------

    def book_for(
        self,
        instagram_id: str,
        start: datetime,
        message_at: datetime,
        moving: int | None = None,
    ) -> Booked:
        """Books `start` (or moves appointment `moving` there) for the patient who wrote at
        `message_at`. Raises `SlotTakenError`, `SlotUnavailableError`, `NotConsentedError`,
        `AppointmentNotFoundError`; nothing is half-written."""
        with conflicts_as_slot_taken(), transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None or not patient.has_consented:
                raise NotConsentedError("no consent on file")
            if moving is not None:
                appointment = reschedule_in(session, self.clinic, moving, patient.id, start)
            else:
                doctor = booking_doctor(session, self.settings)
                appointment = insert_booking(session, self.clinic, doctor.id, patient.id, start)
            last_message_at = max(filter(None, [patient.last_message_at, message_at]))
        deliverable = reminder_deliverable(
            appointment.start_at, last_message_at, self.settings.reminder_lead
        )
        return Booked(appointment, self.zone, deliverable, moved=moving is not None)

    def appointments_of(self, instagram_id: str) -> list[Appointment]:
        """The patient's upcoming appointments, earliest first."""
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            return [] if patient is None else upcoming_in(session, self.clinic, patient.id)

    def cancel_for(self, instagram_id: str, appointment_id: int) -> Appointment:
        """Cancels the patient's own appointment; `AppointmentNotFoundError` otherwise."""
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None:
                raise AppointmentNotFoundError("no patient")
            return cancel_in(session, self.clinic, appointment_id, patient.id)
