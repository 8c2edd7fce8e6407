"""items-only safety restore points: the items (source, path) one covers

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: every restore point made before this release holds whole sources.
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.add_column(sa.Column("items_only", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.drop_column("items_only")
