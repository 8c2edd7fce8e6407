"""operations: log sequence numbers reserved before lines with them are shown

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0 for operations of an earlier release: their next line (an "Interrupted" at start-up)
    # is numbered after their last stored one, as before.
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_reserved_through", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.drop_column("log_reserved_through")
