"""restore points that expire: expires_at, and an index for the next one to expire

Revision ID: 0010
Revises: 0009_local_copy_id
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009_local_copy_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: every restore point made before this release never expires.
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_restore_point_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.drop_index("ix_restore_point_expires")
        batch_op.drop_column("expires_at")
