"""manifest entries: the folder each is in, indexed for browsing; table row counts by content

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("manifest_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent", sa.Text(), server_default="", nullable=False))
    _fill_parents()
    with op.batch_alter_table("manifest_entry", schema=None) as batch_op:
        batch_op.create_index("ix_manifest_entry_children", ["manifest_id", "source", "parent", "path"], unique=False)
    op.create_table(
        "table_rows",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )


def _fill_parents() -> None:
    """Each nested entry's folder, in Python: neither database has a portable "up to the last
    '/'" function. Only entries with a '/' need it (the others stay at the top, "")."""
    connection = op.get_bind()
    entry = sa.table(
        "manifest_entry",
        sa.column("manifest_id", sa.String),
        sa.column("position", sa.Integer),
        sa.column("path", sa.Text),
        sa.column("parent", sa.Text),
    )
    nested = connection.execute(
        sa.select(entry.c.manifest_id, entry.c.position, entry.c.path).where(entry.c.path.contains("/"))
    ).all()
    update = (
        sa.update(entry)
        .where(entry.c.manifest_id == sa.bindparam("m"), entry.c.position == sa.bindparam("p"))
        .values(parent=sa.bindparam("parent"))
    )
    for start in range(0, len(nested), _BATCH):
        rows = nested[start : start + _BATCH]
        connection.execute(update, [{"m": m, "p": p, "parent": path.rpartition("/")[0]} for m, p, path in rows])


def downgrade() -> None:
    op.drop_table("table_rows")
    with op.batch_alter_table("manifest_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_manifest_entry_children")
        batch_op.drop_column("parent")
