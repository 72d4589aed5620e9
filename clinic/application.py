"""The use cases the adapters call: the action server, the channel, the CLI.

Each is keyed by what an adapter knows (a patient's Instagram id, a day, a start time)
and runs in one transaction, so an action makes one call and never sees a session.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import audit, faq, handoffs, texting
from clinic.availability import days_with_slots, opening_hours
from clinic.booking import (
    cancel_in,
    conflicts_as_slot_taken,
    insert_booking,
    reschedule_in,
    upcoming_in,
)
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction, truncate_wal
from clinic.doctors import active_doctors, bookable_doctors
from clinic.erasure import Erased, erase_sender_in
from clinic.errors import AppointmentNotFoundError, NotConsentedError, SlotUnavailableError
from clinic.live_config import LiveConfig
from clinic.models import Appointment, Doctor, Patient, utc_now
from clinic.patients import (
    add_consented_patient,
    consent_in,
    details_in,
    normalize_name,
    normalize_phone,
    patient_by_instagram_id,
    update_details,
)
from clinic.preferences import TimeOfDay
from clinic.profile import Profile, ProfileError, VisitType
from clinic.settings import Settings
from clinic.templates import Templates


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
class Upcoming:
    """An upcoming appointment; `visit` and `doctor` are empty unless the clinic offers a
    choice of them."""

    appointment: Appointment
    visit: str = ""
    doctor: str = ""


@dataclass(frozen=True)
class DoctorView:
    id: int
    name: str
    visit_types: tuple[str, ...]  # the keys of the visits they offer


@dataclass(frozen=True)
class Offer:
    """A free time, and the doctor free then."""

    start: datetime
    doctor_id: int

    @property
    def code(self) -> str:
        """How a conversation keeps it (a slot value, a quick reply's payload)."""
        return f"{self.start.isoformat()}@{self.doctor_id}"

    @classmethod
    def from_code(cls, code: object) -> Offer | None:
        if not isinstance(code, str) or "@" not in code:
            return None
        start, _, doctor = code.rpartition("@")
        try:
            return cls(datetime.fromisoformat(start), int(doctor))
        except ValueError:
            return None


@dataclass(frozen=True)
class Wish:
    """What the patient asked for: a visit type (None: the default visit), a doctor (None:
    any), a time of day (None: any time)."""

    visit: str | None = None
    doctor_id: int | None = None
    time_of_day: TimeOfDay | None = None


NO_WISH = Wish()


@dataclass(frozen=True)
class DaySlots:
    day: date
    offers: list[Offer]


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    zone: ZoneInfo  # the zone the patient reads times in
    reminder: str | None  # where its reminder will go: "instagram", "sms", or nowhere
    moved: bool
    doctor: str
    visit: str
    choice: bool  # the clinic offers several doctors or visits, so the texts name them


class ClinicApp:
    """The booking core as the adapters see it."""

    def __init__(
        self, clinic: Clinic, templates: Templates | None = None, profile: Profile | None = None
    ):
        self.clinic = clinic
        # The clinic's texts and profile as its database holds them now (tests may fix them).
        self._fixed = (templates, profile)
        self._live = LiveConfig(clinic.engine, clinic.settings)

    @property
    def templates(self) -> Templates:
        return self._fixed[0] or self._live.current().templates

    @property
    def profile(self) -> Profile:
        return self._fixed[1] or self._live.current().profile

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

    def choose_texts(self, instagram_id: str, takes_texts: bool) -> bool:
        """The patient said "no texts" (reminders go only by Instagram from now on) or that
        texts are welcome after all. False when no patient has this id yet (nothing to
        store)."""
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None:
                return False
            patient.takes_texts = int(takes_texts)
            event = audit.TEXTS_ACCEPTED if takes_texts else audit.TEXTS_REFUSED
            audit.record(session, event, patient_id=patient.id, via="instagram")
            return True

    def erase_patient(self, instagram_id: str) -> Erased:
        """A confirmed "delete my data": recorded, and the sender erased from the clinic's
        database, patient or not (clinic/erasure.py); the same again for a retried request.
        Their conversation in Rasa's tracker store goes when the turn that asked for this
        is saved, or at the next save or `purge` if that turn died."""
        with transaction(self.clinic.engine) as session:
            erased = erase_sender_in(session, self.clinic, instagram_id)
        truncate_wal(self.clinic.engine)
        return erased

    def request_handoff(self, instagram_id: str) -> None:
        """The patient asked for a person: the bot keeps quiet for them until staff hand
        the conversation back or HANDOFF_TIMEOUT_HOURS pass (clinic/handoffs.py)."""
        hashed = audit.hash_id(instagram_id, self.settings.id_hash_key)

        def record() -> None:
            with transaction(self.clinic.engine) as session:
                patient = patient_by_instagram_id(session, instagram_id)
                handoffs.hand_off(session, instagram_id, hashed, self.clinic.now())
                audit.record(
                    session,
                    audit.HANDOFF_REQUESTED,
                    patient_id=patient.id if patient else None,
                    recipient_hash=hashed,
                )

        handoffs.once_more_on_conflict(record)

    # --- the clinic: doctors, visits, questions ----------------------------------------

    def doctors(self) -> list[DoctorView]:
        """The doctors patients can book with (DEFAULT_DOCTOR_ID alone, when it is set)."""
        with transaction(self.clinic.engine) as session:
            return [self._view(d) for d in bookable_doctors(session, self.settings)]

    def active_doctors(self) -> list[DoctorView]:
        """Every active doctor, whatever DEFAULT_DOCTOR_ID says (the front desk books them all)."""
        with transaction(self.clinic.engine) as session:
            return [self._view(d) for d in active_doctors(session)]

    def visit_types(self) -> list[VisitType]:
        """The visit types some bookable doctor offers, in the profile's order."""
        return self.visits_offered_by(self.doctors())

    def _offers_choice(self, doctors: list[DoctorView]) -> bool:
        """Several doctors or visits: the texts then name the visit and the doctor."""
        return len(doctors) > 1 or len(self.visits_offered_by(doctors)) > 1

    def visits_offered_by(self, doctors: list[DoctorView]) -> list[VisitType]:
        """The visit types some of `doctors` offers, in the profile's order."""
        offered = {key for doctor in doctors for key in doctor.visit_types}
        return [v for v in self.profile.visit_types if v.key in offered]

    def answer_question(self, text: str, day: date | None) -> str | None:
        """The answer to a question about the clinic from its profile and schedule; None
        when they don't hold one. `day`: the day the question names, if any."""
        with transaction(self.clinic.engine) as session:
            hours = opening_hours(session, self.clinic)
            doctors = [d.name for d in bookable_doctors(session, self.settings)]
        return faq.answer(text, self.profile, hours, self.templates, day, doctors)

    # --- free times ---------------------------------------------------------------

    def days_with_slots(self, from_day: date, count: int, wish: Wish = NO_WISH) -> list[date]:
        """Up to `count` days from `from_day` on with a free time that fits the wish."""
        with transaction(self.clinic.engine) as session:
            days = self._offers_by_day(session, from_day, wish)
        return list(itertools.islice(days, max(count, 0)))

    def first_day_with_slots(self, from_day: date, wish: Wish = NO_WISH) -> DaySlots | None:
        """`from_day` if it has free times that fit the wish, else the next day that has."""
        with transaction(self.clinic.engine) as session:
            days = self._offers_by_day(session, from_day, wish)
        return next((DaySlots(day, offers) for day, offers in days.items()), None)

    def slots_on(self, day: date, wish: Wish = NO_WISH) -> list[Offer]:
        """The day's free times that fit the wish (every doctor's, for "any doctor")."""
        with transaction(self.clinic.engine) as session:
            return self._offers_by_day(session, day, wish, last_day=day).get(day, [])

    def _offers_by_day(
        self, session: Session, from_day: date, wish: Wish, last_day: date | None = None
    ) -> dict[date, list[Offer]]:
        """Day -> free times fitting the wish, earliest day first; at any start the doctor
        with the lowest id who is free there. None while the clinic offers no visit type."""
        visit = self._visit_type(wish.visit)
        if visit is None:
            return {}
        by_day: dict[date, dict[datetime, int]] = defaultdict(dict)
        for doctor in bookable_doctors(session, self.settings):
            if wish.doctor_id not in (None, doctor.id):
                continue
            if visit.key not in self._view(doctor).visit_types:
                continue
            for day, starts in days_with_slots(
                session, self.clinic, doctor, from_day, visit.minutes
            ):
                if last_day is not None and day > last_day:
                    break
                for start in starts:
                    by_day[day].setdefault(start, doctor.id)
        offers = {}
        for day in sorted(by_day):
            starts = sorted(by_day[day])
            if wish.time_of_day is not None:
                starts = wish.time_of_day.pick(starts, self.zone)
            if starts:
                offers[day] = [Offer(start, by_day[day][start]) for start in starts]
        return offers

    # --- appointments ---------------------------------------------------------------

    def book_for(
        self,
        instagram_id: str,
        offer: Offer,
        message_at: datetime,
        visit: str | None = None,
        moving: int | None = None,
    ) -> Booked:
        """Books the `offer` for a `visit` (a visit type key; None: the default visit), or
        moves appointment `moving` there, for the patient who wrote at `message_at`.
        Raises `SlotTakenError`, `SlotUnavailableError`, `NotConsentedError`,
        `AppointmentNotFoundError`; nothing is half-written."""
        with conflicts_as_slot_taken(), transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None or not patient.has_consented:
                raise NotConsentedError("no consent on file")
            if moving is not None:
                appointment = reschedule_in(session, self.clinic, moving, patient.id, offer.start)
            else:
                visit_type = self._visit_type(visit)
                if visit_type is None:
                    raise SlotUnavailableError("the clinic offers no visit type")
                appointment = insert_booking(
                    session, self.clinic, offer.doctor_id, patient.id, offer.start, visit_type
                )
            doctor = session.get(Doctor, appointment.doctor_id)
            doctors = [self._view(d) for d in bookable_doctors(session, self.settings)]
            last_message_at = max(filter(None, [patient.last_message_at, message_at]))
            takes_texts = bool(patient.takes_texts and patient.phone)
        reminder = texting.reminder_channel(
            appointment.start_at,
            last_message_at,
            self.settings.reminder_lead,
            takes_texts,
            self.settings.sms_configured,
        )
        return Booked(
            appointment,
            self.zone,
            reminder,
            moved=moving is not None,
            doctor=doctor.name,
            visit=self._visit_name(appointment.visit_type),
            choice=self._offers_choice(doctors),
        )

    def _visit_type(self, key: str | None) -> VisitType | None:
        """The visit type with this key; the default one for None, or for a key the clinic
        withdrew meanwhile; None when it offers none."""
        profile = self.profile
        try:
            return profile.visit_type(key)
        except ProfileError:
            return profile.visit_types[0] if profile.visit_types else None

    def _visit_name(self, key: str | None) -> str:
        try:
            return self.profile.visit_type(key).name
        except ProfileError:
            return key or "Visit"

    def _view(self, doctor: Doctor) -> DoctorView:
        """A doctor who names no visit type offers the clinic's first (default) one."""
        keys = tuple(k for k in (doctor.visit_types or "").split(",") if k.strip())
        default = tuple(v.key for v in self.profile.visit_types[:1])
        return DoctorView(doctor.id, doctor.name, keys or default)

    def appointments_of(self, instagram_id: str) -> list[Upcoming]:
        """The patient's upcoming appointments, earliest first; each names its visit and
        doctor when the clinic offers a choice of them (as the confirmation did)."""
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None:
                return []
            appointments = upcoming_in(session, self.clinic, patient.id)
            doctors = [self._view(d) for d in bookable_doctors(session, self.settings)]
            names = {d.id: d.name for d in session.scalars(select(Doctor))}
        choice = self._offers_choice(doctors)
        return [
            Upcoming(
                a,
                visit=self._visit_name(a.visit_type) if choice else "",
                doctor=names.get(a.doctor_id, "") if choice else "",
            )
            for a in appointments
        ]

    def cancel_for(self, instagram_id: str, appointment_id: int) -> Appointment:
        """Cancels the patient's own appointment; `AppointmentNotFoundError` otherwise."""
        with transaction(self.clinic.engine) as session:
            patient = patient_by_instagram_id(session, instagram_id)
            if patient is None:
                raise AppointmentNotFoundError("no patient")
            return cancel_in(session, self.clinic, appointment_id, patient.id)
