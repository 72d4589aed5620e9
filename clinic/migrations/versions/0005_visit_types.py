"""Visit types: which ones a doctor offers, and the one an appointment is for.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("doctors") as batch:
        batch.add_column(sa.Column("visit_types", sa.String(500), nullable=True))
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("visit_type", sa.String(64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
