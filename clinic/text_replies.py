"""A patient's text to the clinic's number, most often an answer to a reminder: C confirms
their next visit, X asks whether to cancel it and YES then cancels it, STOP and START
follow Twilio's opt-out, anything else (or an unknown number) gets one text with the
clinic's phone and Instagram handle. The patient is found by the number the text came
from; only their next visit is touched.

Each text is handled once (a redelivery finds its answer stored) in one transaction with
its answer, which goes out through the outbox like every other message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic import audit, texting
from clinic.booking import mark_cancelled, upcoming_in
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import BOOKED, CONSENT_GRANTED, Appointment, OutboxMessage, Patient, TextThread
from clinic.outbox import SMS, Outbox, Reply
from clinic.profile import Profile
from clinic.templates import Templates, format_when

# How long "Reply YES to cancel" stays a question.
QUESTION_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class InboundText:
    sid: str  # Twilio's id of the message: a redelivery carries the same
    phone: str  # E.164, where it came from
    body: str


def answer_text(
    clinic: Clinic, outbox: Outbox, templates: Templates, profile: Profile, text: InboundText
) -> str:
    """Handles one inbound text; what it meant (for the log: no words of it)."""
    now = clinic.now()
    origin = f"text:{text.sid}"
    with transaction(clinic.engine) as session:
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.origin == origin)):
            return "duplicate"
        thread = session.get(TextThread, text.phone, with_for_update=True)
        asked = thread is not None and thread.asked_at > now - QUESTION_LIFETIME
        meaning = texting.read_reply(text.body, asked)
        patient = _patient_with_phone(session, clinic, text.phone)
        reply = _act(session, clinic, templates, profile, meaning, patient, thread, text, now)
        if reply is not None:
            session.flush()
            message = Reply(text.phone, origin, 0, {"text": reply}, SMS)
            outbox.store_in(session.connection(), [message], now, lease=False)
        return meaning if patient is not None else f"{meaning} (unknown number)"


def _act(
    session: Session,
    clinic: Clinic,
    templates: Templates,
    profile: Profile,
    meaning: str,
    patient: Patient | None,
    thread: TextThread | None,
    text: InboundText,
    now: datetime,
) -> str | None:
    """Does what the text asks; the answer to send back (None: Twilio answers STOP/START)."""
    facts = {"phone": profile.phone, "clinic": profile.name, "handle": profile.instagram_handle}
    if meaning in (texting.STOP, texting.START):
        # Twilio stops (or resumes) every text to the number: so for everyone who gave it.
        name = audit.TEXTS_ACCEPTED if meaning == texting.START else audit.TEXTS_REFUSED
        for holder in session.scalars(select(Patient).where(Patient.phone == text.phone)):
            holder.takes_texts = int(meaning == texting.START)
            audit.record(session, name, patient_id=holder.id, via="sms")
        return None
    if patient is None or meaning == texting.OTHER:
        return templates.render("text_fallback", **facts)
    visit = next(iter(upcoming_in(session, clinic, patient.id)), None)
    if meaning == texting.YES and thread is not None:
        session.delete(thread)
        asked_for = session.get(Appointment, thread.appointment_id)
        visit = asked_for if asked_for is not None and asked_for.status == BOOKED else None
    if visit is None:
        return templates.render("text_no_visit", phone=profile.phone)
    when = format_when(visit.start_at, clinic.settings.zone)
    if meaning == texting.CONFIRM:
        visit.confirmed_at = now
        audit.record(
            session, audit.APPOINTMENT_CONFIRMED, appointment_id=visit.id, patient_id=patient.id,
            via="sms",
        )  # fmt: skip
        return templates.render("text_confirmed", when=when)
    if meaning == texting.CANCEL:
        if thread is None:
            thread = TextThread(phone=text.phone)
            session.add(thread)
        thread.asked, thread.appointment_id, thread.asked_at = "cancel", visit.id, now
        return templates.render("text_cancel_question", when=when)
    mark_cancelled(session, clinic, visit)  # YES to "Reply YES to cancel"
    return templates.render("text_cancelled", when=when, phone=profile.phone)


def _patient_with_phone(session: Session, clinic: Clinic, phone: str) -> Patient | None:
    """The consented patient with this number; of several (a family's phone), the one whose
    visit comes first."""
    patients = session.scalars(
        select(Patient).where(Patient.phone == phone, Patient.consent_status == CONSENT_GRANTED)
    ).all()
    if len(patients) <= 1:
        return patients[0] if patients else None
    first = session.scalar(
        select(Appointment.patient_id)
        .where(
            Appointment.patient_id.in_([p.id for p in patients]),
            Appointment.status == BOOKED,
            Appointment.start_at > clinic.now(),
        )
        .order_by(Appointment.start_at)
        .limit(1)
    )
    return next((p for p in patients if p.id == first), patients[0])
