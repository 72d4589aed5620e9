"""Erasure markers: a "delete my data" is recorded (a keyed hash of the sender) until
nothing of the sender is left, so a retried turn and the retention job can finish it.

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_markers",
        sa.Column("sender_hash", sa.String(64), primary_key=True),
        sa.Column("requested_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
