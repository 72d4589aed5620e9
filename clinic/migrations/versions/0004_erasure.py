"""Erasure deletes the patient: their past appointments stay, anonymous, and a patient's
id is never given to anyone else (SQLite would reuse the highest one).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.alter_column("patient_id", existing_type=sa.Integer, nullable=True)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "patients", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
