"""Reminders by text message: whether a patient takes texts, a visit confirmed by text,
the outbox's channel (Instagram or a text) with Twilio's id and delivery status, the
question a text asked, and the pace of texts shared by every sender.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column("takes_texts", sa.Integer, nullable=False, server_default=sa.text("1"))
        )
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("confirmed_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(16), nullable=False, server_default="instagram")
        )
        batch.add_column(sa.Column("tried_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("provider_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("delivery", sa.String(16), nullable=True))
    op.create_index("ix_outbox_provider", "outbox_messages", ["provider_id"])
    op.create_table(
        "text_threads",
        sa.Column("phone", sa.String(20), primary_key=True),
        sa.Column("asked", sa.String(16), nullable=False),
        sa.Column("appointment_id", sa.Integer, nullable=False),
        sa.Column("asked_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "send_pace",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("next_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
