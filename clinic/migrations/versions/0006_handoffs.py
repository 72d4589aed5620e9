"""Hand-offs: conversations staff took over, and whether the bot keeps quiet; the ids of
the messages the bot sent, to tell its echoes from staff's.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OPEN = sa.text("state != 'closed'")


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(64), nullable=True),
        sa.Column("sender_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("control_passed", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("staff_at", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("close_reason", sa.String(16), nullable=True),
    )
    op.create_index(
        "ix_handoffs_open", "handoffs", ["sender_id"], sqlite_where=OPEN, postgresql_where=OPEN
    )
    op.create_index("ix_handoffs_opened", "handoffs", ["opened_at"])
    op.create_table(
        "own_messages",
        sa.Column("mid", sa.String(255), primary_key=True),
        sa.Column("sent_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
