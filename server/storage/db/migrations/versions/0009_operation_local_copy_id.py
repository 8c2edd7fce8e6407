"""operation.local_copy_id long enough for any file name's id

A local copy's id is `lc_` and its file name in base64: a name of 255 bytes (the most a
file system allows) gives 343 characters, more than the 300 the column held, so on
PostgreSQL an operation on a copy put in the folder by hand under a long name failed.

Revision ID: 0009_local_copy_id
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_local_copy_id"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.alter_column(
            "local_copy_id", existing_type=sa.String(length=300), type_=sa.String(length=400), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.alter_column(
            "local_copy_id", existing_type=sa.String(length=400), type_=sa.String(length=300), existing_nullable=True
        )
