"""The durable inbox and outbox of the Instagram channel (docs/delivery.md).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mid", sa.String(255), nullable=False, unique=True),
        sa.Column("sender_id", sa.String(64), nullable=False),
        sa.Column("sent_at_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("not_before", UTCDateTime, nullable=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("done_at", UTCDateTime, nullable=True),
    )
    op.create_index(
        "ix_inbox_pending",
        "inbox_messages",
        ["sender_id", "sent_at_ms", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_inbox_sender", "inbox_messages", ["sender_id"])
    op.create_index("ix_inbox_received", "inbox_messages", ["received_at"])
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("inbox_mid", sa.String(255), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("body", sa.JSON, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("not_before", UTCDateTime, nullable=True),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("inbox_mid", "seq", name="uq_outbox_answer"),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox_messages",
        ["recipient_id", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_outbox_status_created", "outbox_messages", ["status", "created_at"])


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
