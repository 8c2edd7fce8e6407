"""restore points: a schedule's own, newest first, straight from an index

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A listing filtered by schedule walks this in order; the old one-column index made the
    # database sort all of that schedule's restore points for every page.
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.drop_index("ix_restore_point_schedule")
        batch_op.create_index("ix_restore_point_schedule", ["schedule_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.drop_index("ix_restore_point_schedule")
        batch_op.create_index("ix_restore_point_schedule", ["schedule_id"], unique=False)
