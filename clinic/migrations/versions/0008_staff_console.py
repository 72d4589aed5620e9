"""The staff console: staff accounts, where a booking came from, patients booked by phone
(no Instagram id), what staff did (audit), notices of changes the clinic made, and
hand-offs given back from the console.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

from clinic.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An erased patient's id is never given to anyone else: kept when SQLite copies the table.
    with op.batch_alter_table("patients", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("instagram_id", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("consent_via", sa.String(16), nullable=True))
        batch.add_column(sa.Column("consent_staff_id", sa.Integer, nullable=True))
        batch.create_index("ix_patients_phone", ["phone"])
    op.execute("UPDATE patients SET consent_via = 'instagram' WHERE consent_at IS NOT NULL")
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="instagram")
        )
        batch.add_column(sa.Column("booked_by_staff_id", sa.Integer, nullable=True))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("staff_id", sa.Integer, nullable=True))
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("given_back_at", UTCDateTime, nullable=True))
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("active", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("failed_sign_ins", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.Column("link_hash", sa.String(64), nullable=True),
        sa.Column("link_expires_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_sign_in_at", UTCDateTime, nullable=True),
        sa.CheckConstraint("role IN ('admin', 'desk')", name="ck_staff_role"),
    )
    op.create_index("ux_staff_link", "staff", ["link_hash"], unique=True)
    op.create_table(
        "staff_notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("appointment_id", sa.Integer, sa.ForeignKey("appointments.id"), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("outbox_key", sa.String(255), nullable=True),
        sa.Column("staff_id", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("done_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_staff_notices_appointment", "staff_notices", ["appointment_id"])


def downgrade() -> None:
    raise NotImplementedError("clinic-dm never drops data; restore from a backup instead")
