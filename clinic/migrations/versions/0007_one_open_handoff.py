"""At most one open hand-off per patient: the action server and the webhook may open one
at the same moment; the database keeps the second from becoming another.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A closed hand-off's sender_id is NULL, and NULLs never clash in a unique index.
    op.drop_index("ix_handoffs_open", table_name="handoffs")
    op.create_index("ux_handoffs_sender", "handoffs", ["sender_id"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
