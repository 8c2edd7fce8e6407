"""shared manifests: each distinct manifest stored once, restore points refer to it

Revision ID: 0003
Revises: 0002

Entries move from restore_point_entry (keyed by restore point) to manifest_entry (keyed by
manifest id); restore points with the same entries, mtimes included, end up sharing one.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ENTRY_COLUMNS = "position, source, path, kind, size, sha256, mode, mtime"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    op.create_table("manifest", sa.Column("id", sa.String(length=64), nullable=False), sa.PrimaryKeyConstraint("id"))
    op.create_table(
        "manifest_entry",
        sa.Column("manifest_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("mtime", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["manifest_id"], ["manifest.id"]),
        sa.PrimaryKeyConstraint("manifest_id", "position"),
    )
    # A plain ADD COLUMN: a batch here would rebuild restore_point, and with SQLite's foreign
    # keys on, dropping the old table cascades into restore_point_entry before it is moved.
    op.add_column("restore_point", sa.Column("manifest_id", sa.String(length=64), nullable=True))

    _move_entries_to_manifests(op.get_bind())

    with op.batch_alter_table("restore_point_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_entry_sha256")
    op.drop_table("restore_point_entry")
    with op.batch_alter_table("manifest_entry", schema=None) as batch_op:
        batch_op.create_index("ix_manifest_entry_sha256", ["sha256"], unique=False)
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.alter_column("manifest_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_foreign_key("fk_restore_point_manifest", "manifest", ["manifest_id"], ["id"])
        batch_op.create_index("ix_restore_point_manifest", ["manifest_id"], unique=False)


def _move_entries_to_manifests(connection: sa.Connection) -> None:
    """Give every restore point the manifest of its entries, storing each distinct one once."""
    held: set[str] = set()
    points = connection.execute(sa.text("SELECT id FROM restore_point ORDER BY created_at, id")).scalars().all()
    for point_id in points:
        rows = connection.execute(
            sa.text(
                f"SELECT {_ENTRY_COLUMNS} FROM restore_point_entry WHERE restore_point_id = :id ORDER BY position"
            ).columns(mtime=sa.DateTime(timezone=True)),
            {"id": point_id},
        ).all()
        manifest_id = _manifest_id(rows)
        if manifest_id not in held:
            held.add(manifest_id)
            connection.execute(sa.text("INSERT INTO manifest (id) VALUES (:id)"), {"id": manifest_id})
            connection.execute(
                sa.text(
                    f"INSERT INTO manifest_entry (manifest_id, {_ENTRY_COLUMNS})"
                    f" SELECT :manifest, {_ENTRY_COLUMNS} FROM restore_point_entry WHERE restore_point_id = :id"
                ),
                {"manifest": manifest_id, "id": point_id},
            )
        connection.execute(
            sa.text("UPDATE restore_point SET manifest_id = :manifest WHERE id = :id"),
            {"manifest": manifest_id, "id": point_id},
        )


def _manifest_id(rows: Sequence[sa.Row[Any]]) -> str:
    """server.model.manifests.manifest_id over stored rows, frozen here as it was written:
    if that function changes later, old manifests are merely not shared with new ones."""
    content = [[row.source, row.path, row.kind, row.size, row.sha256, row.mode] for row in rows]
    checksum = _sha256(content)
    return _sha256([checksum, [_micros(row.mtime) for row in rows]])


def _sha256(canonical: list[Any]) -> str:
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


def _micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    # SQLite hands back the stored UTC time without an offset; PostgreSQL an aware one.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return (moment - _EPOCH) // timedelta(microseconds=1)


def downgrade() -> None:
    # Which manifest each point had, kept aside: rebuilding restore_point without the column
    # (a batch, on SQLite) would cascade into a restore_point_entry made before it.
    op.execute("CREATE TABLE restore_point_manifest AS SELECT id, manifest_id FROM restore_point")
    with op.batch_alter_table("restore_point", schema=None) as batch_op:
        batch_op.drop_index("ix_restore_point_manifest")
        batch_op.drop_constraint("fk_restore_point_manifest", type_="foreignkey")
        batch_op.drop_column("manifest_id")
    op.create_table(
        "restore_point_entry",
        sa.Column("restore_point_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("mtime", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["restore_point_id"], ["restore_point.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("restore_point_id", "position"),
    )
    columns = ", ".join(f"manifest_entry.{name}" for name in _ENTRY_COLUMNS.split(", "))
    op.execute(
        f"INSERT INTO restore_point_entry (restore_point_id, {_ENTRY_COLUMNS})"
        f" SELECT restore_point_manifest.id, {columns} FROM restore_point_manifest"
        " JOIN manifest_entry ON manifest_entry.manifest_id = restore_point_manifest.manifest_id"
    )
    op.drop_table("restore_point_manifest")
    with op.batch_alter_table("restore_point_entry", schema=None) as batch_op:
        batch_op.create_index("ix_entry_sha256", ["sha256"], unique=False)
    with op.batch_alter_table("manifest_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_manifest_entry_sha256")
    op.drop_table("manifest_entry")
    op.drop_table("manifest")
