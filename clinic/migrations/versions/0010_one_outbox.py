"""One outbox for everything the bot sends: a row's `origin` is what it answers (an inbox
mid, or a reminder's key), not necessarily an inbox message; reminders lose their own
claim (the outbox's lease is the only one), and a claim left behind is pending again.

Revision ID: 0010
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain SQL, the same on PostgreSQL and SQLite (3.35 and later): no table is rebuilt.
    op.execute("ALTER TABLE outbox_messages RENAME COLUMN inbox_mid TO origin")
    op.execute("UPDATE notifications SET status = 'pending' WHERE status IN ('sending', 'failed')")
    op.execute("ALTER TABLE notifications DROP COLUMN claim_token")
    op.execute("ALTER TABLE notifications DROP COLUMN claimed_at")


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
