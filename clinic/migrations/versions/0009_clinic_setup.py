"""The clinic sets itself up: visit types, its facts and own topics, its wording of the
patient texts, date overrides of the doctors' hours, and a revision number the processes
watch to pick up changes without a restart.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_types",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("price", sa.String(16), nullable=False),
        sa.Column("price_from", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("words", sa.JSON, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("active", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.CheckConstraint("minutes BETWEEN 5 AND 480", name="ck_visit_minutes"),
    )
    op.create_table(
        "clinic_facts",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=True),
    )
    op.create_table(
        "clinic_topics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("words", sa.JSON, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
    )
    op.create_table(
        "text_overrides",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "schedule_overrides",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "doctor_id",
            sa.Integer,
            sa.ForeignKey("doctors.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("start_time", sa.Time, nullable=True),
        sa.Column("end_time", sa.Time, nullable=True),
        sa.CheckConstraint(
            "(start_time IS NULL AND end_time IS NULL) OR end_time > start_time",
            name="ck_override_order",
        ),
    )
    op.create_index("ix_schedule_overrides_doctor_day", "schedule_overrides", ["doctor_id", "day"])
    op.create_table(
        "config_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.execute("INSERT INTO config_revision (id, revision) VALUES (1, 0)")


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
