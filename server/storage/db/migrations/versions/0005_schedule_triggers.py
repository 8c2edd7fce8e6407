"""schedules: after-change restore points, copies to locations, the retention timer's state

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("after_change_quiet_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("copy_to_locations", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("last_pruned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_column("last_pruned_at")
        batch_op.drop_column("copy_to_locations")
        batch_op.drop_column("after_change_quiet_seconds")
