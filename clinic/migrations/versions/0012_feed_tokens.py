"""Revocable calendar links: each doctor's link is a random token kept only as its SHA-256,
one per doctor. The links derived from ID_HASH_KEY before stop working: no doctor has a
link until one is issued (`python -m clinic doctors --feed-urls`).

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_tokens",
        sa.Column(
            "doctor_id",
            sa.Integer,
            sa.ForeignKey("doctors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
    )
    op.create_index("ux_feed_tokens_hash", "feed_tokens", ["token_hash"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
