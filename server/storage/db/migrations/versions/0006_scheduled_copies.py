"""scheduled copies: which copies at a location a schedule of this server put there

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_copy",
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("schedule_id", sa.String(length=40), nullable=False),
        sa.Column("restore_point_id", sa.String(length=40), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("location", "file_name"),
    )
    with op.batch_alter_table("scheduled_copy", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_copy_schedule", ["schedule_id", "location"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scheduled_copy", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_copy_schedule")
    op.drop_table("scheduled_copy")
