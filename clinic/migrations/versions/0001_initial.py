"""Initial schema: doctors, hours, blocks, patients, appointments, audit.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "doctors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("slot_minutes", sa.Integer, nullable=False),
        sa.Column("active", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.CheckConstraint("slot_minutes BETWEEN 5 AND 480", name="ck_slot_minutes"),
    )
    op.create_table(
        "working_hours",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "doctor_id", sa.Integer, sa.ForeignKey("doctors.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("weekday", sa.SmallInteger, nullable=False),
        sa.Column("start_time", sa.Time, nullable=False),
        sa.Column("end_time", sa.Time, nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_weekday"),
        sa.CheckConstraint("end_time > start_time", name="ck_hours_order"),
    )
    op.create_index("ix_working_hours_doctor_weekday", "working_hours", ["doctor_id", "weekday"])
    op.create_table(
        "blocked_times",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "doctor_id", sa.Integer, sa.ForeignKey("doctors.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.CheckConstraint("end_at > start_at", name="ck_block_order"),
    )
    op.create_index("ix_blocked_times_end", "blocked_times", ["end_at"])
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("instagram_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("consent_status", sa.String(16), nullable=False),
        sa.Column("consent_at", UTCDateTime, nullable=True),
        sa.Column("last_message_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("doctor_id", sa.Integer, sa.ForeignKey("doctors.id"), nullable=False),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("cancelled_at", UTCDateTime, nullable=True),
        sa.CheckConstraint("end_at > start_at", name="ck_appointment_order"),
        sa.CheckConstraint("status IN ('booked', 'cancelled')", name="ck_appointment_status"),
    )
    # The guard against double booking, on every backend.
    op.create_index(
        "uq_appointments_active_start",
        "appointments",
        ["doctor_id", "start_at"],
        unique=True,
        sqlite_where=sa.text("status = 'booked'"),
        postgresql_where=sa.text("status = 'booked'"),
    )
    op.create_index("ix_appointments_patient_start", "appointments", ["patient_id", "start_at"])
    op.create_index("ix_appointments_start", "appointments", ["start_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Overlapping active appointments of one doctor are refused, whatever their length.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE appointments ADD CONSTRAINT ex_appointments_no_overlap "
            "EXCLUDE USING gist (doctor_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
            "WHERE (status = 'booked')"
        )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("appointment_id", sa.Integer, nullable=True),
        sa.Column("patient_id", sa.Integer, nullable=True),
        sa.Column("doctor_id", sa.Integer, nullable=True),
        sa.Column("recipient_hash", sa.String(64), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_audit_events_name_time", "audit_events", ["name", "created_at"])


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
