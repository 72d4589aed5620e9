"""Tables. Times are stored in UTC and always come back as aware UTC datetimes."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

Base = declarative_base()

BOOKED = "booked"
CANCELLED = "cancelled"

CONSENT_GRANTED = "granted"
CONSENT_WITHDRAWN = "withdrawn"

# Where an appointment was booked, and how consent was given.
SOURCE_INSTAGRAM = "instagram"
SOURCE_PHONE = "phone"
SOURCE_WALK_IN = "walk_in"
SOURCES = (SOURCE_INSTAGRAM, SOURCE_PHONE, SOURCE_WALK_IN)


class UTCDateTime(TypeDecorator):
    """A timestamp that only accepts aware datetimes and returns aware UTC ones.

    SQLite has no time zone type, so values are normalised to UTC before they
    are written; PostgreSQL gets `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Doctor(Base):
    __tablename__ = "doctors"

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    timezone = Column(String(64), nullable=False)
    slot_minutes = Column(Integer, nullable=False, default=30)
    active = Column(Integer, nullable=False, default=1, server_default=text("1"))
    # The keys of the visit types the doctor offers, comma-separated; none set: the
    # profile's first (default) visit.
    visit_types = Column(String(500), nullable=True)

    working_hours = relationship("WorkingHours", order_by="WorkingHours.start_time")

    __table_args__ = (CheckConstraint("slot_minutes BETWEEN 5 AND 480", name="ck_slot_minutes"),)


class WorkingHours(Base):
    """One range of a weekday (0 = Monday); a day may have several ranges."""

    __tablename__ = "working_hours"

    id = Column(Integer, primary_key=True)
    doctor_id = Column(Integer, ForeignKey("doctors.id", ondelete="CASCADE"), nullable=False)
    weekday = Column(SmallInteger, nullable=False)
    start_time = Column(Time, nullable=False)
    end_time = Column(Time, nullable=False)

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_weekday"),
        CheckConstraint("end_time > start_time", name="ck_hours_order"),
        Index("ix_working_hours_doctor_weekday", "doctor_id", "weekday"),
    )


class BlockedTime(Base):
    """A manual block (lunch, holiday). No doctor means the whole clinic is closed."""

    __tablename__ = "blocked_times"

    id = Column(Integer, primary_key=True)
    doctor_id = Column(Integer, ForeignKey("doctors.id", ondelete="CASCADE"), nullable=True)
    start_at = Column(UTCDateTime, nullable=False)
    end_at = Column(UTCDateTime, nullable=False)
    reason = Column(String(200), nullable=False, default="")

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ck_block_order"),
        Index("ix_blocked_times_end", "end_at"),
    )


class Patient(Base):
    __tablename__ = "patients"

    id = Column(Integer, primary_key=True)
    # None for a patient the front desk booked by phone, who never wrote on Instagram.
    instagram_id = Column(String(64), nullable=True, unique=True)
    name = Column(String(100), nullable=True)
    phone = Column(String(20), nullable=True)
    consent_status = Column(String(16), nullable=False)
    consent_at = Column(UTCDateTime, nullable=True)
    consent_via = Column(String(16), nullable=True)  # SOURCE_INSTAGRAM or SOURCE_PHONE
    consent_staff_id = Column(Integer, nullable=True)  # who took consent by phone
    # 0 once the patient said "no texts" (or STOP to a text): reminders only on Instagram.
    takes_texts = Column(Integer, nullable=False, default=1, server_default=text("1"))
    last_message_at = Column(UTCDateTime, nullable=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    # An erased patient's id is never given to anyone else.
    __table_args__ = (Index("ix_patients_phone", "phone"), {"sqlite_autoincrement": True})

    @property
    def has_consented(self) -> bool:
        return self.consent_status == CONSENT_GRANTED

    @property
    def has_details(self) -> bool:
        return bool(self.name and self.phone)


class Appointment(Base):
    __tablename__ = "appointments"

    id = Column(Integer, primary_key=True)
    doctor_id = Column(Integer, ForeignKey("doctors.id"), nullable=False)
    # NULL once the patient erased their data: the visit stays in the books, anonymous.
    patient_id = Column(Integer, ForeignKey("patients.id"), nullable=True)
    start_at = Column(UTCDateTime, nullable=False)
    end_at = Column(UTCDateTime, nullable=False)
    status = Column(String(16), nullable=False, default=BOOKED)
    visit_type = Column(String(64), nullable=True)  # a key of the profile's visit types
    source = Column(
        String(16), nullable=False, default=SOURCE_INSTAGRAM, server_default=SOURCE_INSTAGRAM
    )
    booked_by_staff_id = Column(Integer, nullable=True)  # the front desk's bookings
    confirmed_at = Column(UTCDateTime, nullable=True)  # the patient confirmed (a text's "C")
    notes = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    cancelled_at = Column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ck_appointment_order"),
        CheckConstraint("status IN ('booked', 'cancelled')", name="ck_appointment_status"),
        # The database itself refuses a second active booking of a slot.
        Index(
            "uq_appointments_active_start",
            "doctor_id",
            "start_at",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
        Index("ix_appointments_patient_start", "patient_id", "start_at"),
        Index("ix_appointments_start", "start_at"),
    )


class AuditEvent(Base):
    """What happened, to which ids. Never names, phones, raw Instagram ids or text."""

    __tablename__ = "audit_events"

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False)
    appointment_id = Column(Integer, nullable=True)
    patient_id = Column(Integer, nullable=True)
    doctor_id = Column(Integer, nullable=True)
    recipient_hash = Column(String(64), nullable=True)
    staff_id = Column(Integer, nullable=True)  # the staff member who acted, if one did
    details = Column("metadata", JSON, nullable=False, default=dict)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    __table_args__ = (Index("ix_audit_events_name_time", "name", "created_at"),)


class Notification(Base):
    """The reminder of an appointment: its state (clinic/reminders.py) and how many times
    it was put in the outbox."""

    __tablename__ = "notifications"

    id = Column(Integer, primary_key=True)
    appointment_id = Column(Integer, ForeignKey("appointments.id"), nullable=False)
    kind = Column(String(32), nullable=False)
    status = Column(String(32), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    updated_at = Column(UTCDateTime, nullable=False, default=utc_now)

    __table_args__ = (
        UniqueConstraint("appointment_id", "kind", name="uq_notifications_appointment_kind"),
        Index("ix_notifications_status", "status"),
    )


INBOX_PENDING = "pending"  # waiting, or claimed under a lease by a worker
INBOX_DONE = "done"
INBOX_FAILED = "failed"  # its turns kept failing; kept for staff, never retried
OUTBOX_PENDING = "pending"  # waiting, or being sent under a lease
OUTBOX_SENT = "sent"
OUTBOX_FAILED = "failed"  # a dead letter: refused by Graph, or out of retries


class InboxMessage(Base):
    """A patient's message, committed before Meta gets its 200 (docs/delivery.md)."""

    __tablename__ = "inbox_messages"

    id = Column(Integer, primary_key=True)
    mid = Column(String(255), nullable=False, unique=True)  # Meta's id: the dedupe
    sender_id = Column(String(64), nullable=False)
    sent_at_ms = Column(BigInteger, nullable=False)  # Meta's timestamp: the order
    kind = Column(String(16), nullable=False)
    message_text = Column("text", Text, nullable=True)  # erased once the message is handled
    status = Column(String(16), nullable=False, default=INBOX_PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    lease_owner = Column(String(128), nullable=True)
    lease_until = Column(UTCDateTime, nullable=True)
    not_before = Column(UTCDateTime, nullable=True)  # a failed turn waits to be tried again
    received_at = Column(UTCDateTime, nullable=False)
    done_at = Column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index(
            "ix_inbox_pending",
            "sender_id",
            "sent_at_ms",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_inbox_sender", "sender_id"),
        Index("ix_inbox_received", "received_at"),
    )


class OutboxMessage(Base):
    """A message the bot sends, committed before it is sent and marked once accepted."""

    __tablename__ = "outbox_messages"

    id = Column(Integer, primary_key=True)
    recipient_id = Column(String(64), nullable=False)
    # What it answers: an inbox mid, or another key ("reminder:<appointment id>:<try>").
    origin = Column(String(255), nullable=False)
    seq = Column(Integer, nullable=False)  # its place among the messages of that origin
    body = Column(JSON(none_as_null=True), nullable=True)  # the Graph `message`; erased when sent
    channel = Column(String(16), nullable=False, default="instagram", server_default="instagram")
    tried_at = Column(UTCDateTime, nullable=True)  # a text's first try began (see sms_sender)
    provider_id = Column(String(64), nullable=True)  # the channel's id for it (Twilio's sid)
    delivery = Column(String(16), nullable=True)  # a text's last status: delivered, failed…
    status = Column(String(16), nullable=False, default=OUTBOX_PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    lease_owner = Column(String(128), nullable=True)
    lease_until = Column(UTCDateTime, nullable=True)
    not_before = Column(UTCDateTime, nullable=True)
    error = Column(String(64), nullable=True)  # why it failed: a kind and codes, no text
    created_at = Column(UTCDateTime, nullable=False)
    sent_at = Column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("origin", "seq", name="uq_outbox_answer"),
        Index("ix_outbox_provider", "provider_id"),
        Index(
            "ix_outbox_pending",
            "recipient_id",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_outbox_status_created", "status", "created_at"),
    )


HANDOFF_WAITING = "waiting"  # control passed to the Instagram inbox; no one has written yet
HANDOFF_WITH_STAFF = "with_staff"  # someone at the clinic wrote to the patient
HANDOFF_CLOSED = "closed"  # control came back, or the time ran out


class Handoff(Base):
    """A conversation staff took over: asked for by the patient, or begun by staff writing.
    The raw Instagram id is kept only while it is open (to keep the bot quiet)."""

    __tablename__ = "handoffs"

    id = Column(Integer, primary_key=True)
    sender_id = Column(String(64), nullable=True)  # erased when closed
    sender_hash = Column(String(64), nullable=False)
    state = Column(String(16), nullable=False)
    control_passed = Column(Integer, nullable=False, default=0)  # 1: we passed thread control
    opened_at = Column(UTCDateTime, nullable=False)
    staff_at = Column(UTCDateTime, nullable=True)  # staff's latest message
    closed_at = Column(UTCDateTime, nullable=True)
    close_reason = Column(String(16), nullable=True)  # "returned", "given back" or "timeout"
    given_back_at = Column(UTCDateTime, nullable=True)  # staff gave it back from the console

    __table_args__ = (
        # One open hand-off per patient: a closed one's sender_id is NULL.
        Index("ux_handoffs_sender", "sender_id", unique=True),
        Index("ix_handoffs_opened", "opened_at"),
    )


class OwnMessage(Base):
    """A message the bot sent (Graph's id for it): its echo is the bot's, not staff's,
    whatever app id the echo carries. Ids only; kept for the retention period."""

    __tablename__ = "own_messages"

    mid = Column(String(255), primary_key=True)
    sent_at = Column(UTCDateTime, nullable=False)


class ErasureMarker(Base):
    """A "delete my data" not yet finished everywhere (clinic/erasure_markers.py): the
    sender's keyed hash and when it was asked, nothing more."""

    __tablename__ = "erasure_markers"

    sender_hash = Column(String(64), primary_key=True)
    requested_at = Column(UTCDateTime, nullable=False)


ROLE_ADMIN = "admin"  # manages staff and the clinic's settings, and runs the day
ROLE_DESK = "desk"  # runs the day: bookings, cancellations, blocks, hand-offs
ROLES = (ROLE_ADMIN, ROLE_DESK)


class Staff(Base):
    """A person at the clinic who signs in to the console. Passwords are Argon2 hashes; a
    one-time sign-in link is kept only as a hash until it is used or runs out."""

    __tablename__ = "staff"

    id = Column(Integer, primary_key=True)
    email = Column(String(254), nullable=False, unique=True)  # lower case
    role = Column(String(16), nullable=False)
    password_hash = Column(String(255), nullable=True)  # None until the link is used
    active = Column(Integer, nullable=False, default=1, server_default=text("1"))
    failed_sign_ins = Column(Integer, nullable=False, default=0, server_default=text("0"))
    locked_until = Column(UTCDateTime, nullable=True)
    link_hash = Column(String(64), nullable=True)
    link_expires_at = Column(UTCDateTime, nullable=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    last_sign_in_at = Column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'desk')", name="ck_staff_role"),
        Index("ux_staff_link", "link_hash", unique=True),
    )


NOTICE_DM = "instagram"  # a DM through the outbox
NOTICE_SMS = "sms"  # a text message through the outbox
NOTICE_CALL = "call"  # no channel reaches the patient: staff must call


class StaffNotice(Base):
    """What a patient was told, or must be told, of a change the clinic made to their
    visit (cancelled or moved from the console)."""

    __tablename__ = "staff_notices"

    id = Column(Integer, primary_key=True)
    appointment_id = Column(Integer, ForeignKey("appointments.id"), nullable=False)
    change = Column(String(16), nullable=False)  # "cancelled" or "moved"
    channel = Column(String(16), nullable=False)  # NOTICE_DM or NOTICE_CALL
    outbox_key = Column(String(255), nullable=True)  # the DM's outbox row
    staff_id = Column(Integer, nullable=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    done_at = Column(UTCDateTime, nullable=True)  # the call was made

    __table_args__ = (Index("ix_staff_notices_appointment", "appointment_id"),)


class VisitType(Base):
    """A kind of visit the clinic offers: how long it takes and what it costs. Doctors
    list the keys of those they offer (`Doctor.visit_types`); appointments keep the key."""

    __tablename__ = "visit_types"

    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False, unique=True)
    name = Column(String(100), nullable=False)
    minutes = Column(Integer, nullable=False)
    price = Column(String(16), nullable=False)  # a decimal number, without the currency
    price_from = Column(Integer, nullable=False, default=0, server_default=text("0"))
    words = Column(JSON, nullable=False, default=list)  # how patients name it
    position = Column(Integer, nullable=False, default=0)
    active = Column(Integer, nullable=False, default=1, server_default=text("1"))

    __table_args__ = (CheckConstraint("minutes BETWEEN 5 AND 480", name="ck_visit_minutes"),)


class ClinicFact(Base):
    """One of the clinic's facts patients ask about (address, phone…), as JSON."""

    __tablename__ = "clinic_facts"

    key = Column(String(64), primary_key=True)
    value = Column(JSON, nullable=True)


class ClinicTopic(Base):
    """A question of the clinic's own: the words that ask it, and its answer."""

    __tablename__ = "clinic_topics"

    id = Column(Integer, primary_key=True)
    position = Column(Integer, nullable=False, default=0)
    words = Column(JSON, nullable=False, default=list)
    answer = Column(Text, nullable=False)


class TextOverride(Base):
    """The clinic's own wording of a patient text (the default is in templates.yml)."""

    __tablename__ = "text_overrides"

    name = Column(String(64), primary_key=True)
    text = Column(Text, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False, default=utc_now)


class ScheduleOverride(Base):
    """A doctor's hours on one date instead of the weekday's: one row per range, or one
    row without times for a day off."""

    __tablename__ = "schedule_overrides"

    id = Column(Integer, primary_key=True)
    doctor_id = Column(Integer, ForeignKey("doctors.id", ondelete="CASCADE"), nullable=False)
    day = Column(Date, nullable=False)
    start_time = Column(Time, nullable=True)
    end_time = Column(Time, nullable=True)

    __table_args__ = (
        CheckConstraint(
            "(start_time IS NULL AND end_time IS NULL) OR end_time > start_time",
            name="ck_override_order",
        ),
        Index("ix_schedule_overrides_doctor_day", "doctor_id", "day"),
    )


class ConfigRevision(Base):
    """One row, counting the changes to the clinic's facts, visit types and texts: each
    process reloads them when it sees a new number (no restart)."""

    __tablename__ = "config_revision"

    id = Column(Integer, primary_key=True)
    revision = Column(Integer, nullable=False, default=0)


class TextThread(Base):
    """A question the clinic asked a patient by text and waits an answer to: "Cancel your
    visit on …? Reply YES to cancel". Kept until answered, erasure or retention."""

    __tablename__ = "text_threads"

    phone = Column(String(20), primary_key=True)
    asked = Column(String(16), nullable=False)  # "cancel"
    appointment_id = Column(Integer, nullable=False)
    asked_at = Column(UTCDateTime, nullable=False)


class SendPace(Base):
    """The earliest time the next message of a channel may go (texts: Twilio's rate), shared
    by every process that sends."""

    __tablename__ = "send_pace"

    channel = Column(String(16), primary_key=True)
    next_at = Column(UTCDateTime, nullable=False)


class FeedToken(Base):
    """A doctor's calendar link, kept only as the SHA-256 of its random token: at most one
    per doctor, and a new one replaces (revokes) the old. No row: the doctor has no feed."""

    __tablename__ = "feed_tokens"

    doctor_id = Column(Integer, ForeignKey("doctors.id", ondelete="CASCADE"), primary_key=True)
    token_hash = Column(String(64), nullable=False)
    issued_at = Column(UTCDateTime, nullable=False, default=utc_now)

    __table_args__ = (Index("ux_feed_tokens_hash", "token_hash", unique=True),)
