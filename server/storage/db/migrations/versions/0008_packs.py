"""packs: small blobs in pack files, and where each one is

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New tables only: loose blobs stay valid, so a data folder of an earlier release needs
    # nothing moved (its blobs are read where they are, new small ones go into packs).
    op.create_table(
        "pack",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "packed_blob",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pack_id", sa.String(length=40), nullable=False),
        sa.Column("start_byte", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_index("ix_packed_blob_pack", "packed_blob", ["pack_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_packed_blob_pack", table_name="packed_blob")
    op.drop_table("packed_blob")
    op.drop_table("pack")
