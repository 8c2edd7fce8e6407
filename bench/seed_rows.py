"""Test-only: put many restore point rows straight into a server's SQLite database.

The benchmark of `restorePoints(first: 50)` needs 100,000 restore points; making each one
through the API would take most of the time budget, so the rows are inserted with
SQLAlchemy into the tables the server reads (no content, no entries: listing reads neither;
they all refer to the empty manifest).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, select

from server.model.manifests import manifest_id
from server.storage.db.tables import ManifestRow, RestorePointRow

BATCH = 5000


def insert_restore_points(database: Path, count: int) -> None:
    """Insert `count` restore points, one a minute going back from now."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    now = datetime.now(UTC)
    empty = manifest_id([])
    try:
        with engine.begin() as connection:
            if connection.scalar(select(ManifestRow.id).where(ManifestRow.id == empty)) is None:
                connection.execute(insert(ManifestRow), [{"id": empty}])
            for start in range(0, count, BATCH):
                rows = []
                for n in range(start, min(count, start + BATCH)):
                    rows.append(
                        {
                            "id": f"rp_{n:024x}",
                            "label": f"Nightly {n}",
                            "note": None,
                            "origin": "SCHEDULED",
                            "created_at": now - timedelta(minutes=n),
                            "created_by": "cron",
                            "size_bytes": 3_000_000 + n,
                            "stored_bytes": n % 5000,
                            "item_count": 7 + n % 50,
                            "checksum": hashlib.sha256(str(n).encode()).hexdigest(),
                            "server_version": "0.1.0",
                            "manifest_id": empty,
                        }
                    )
                connection.execute(insert(RestorePointRow), rows)
    finally:
        engine.dispose()
    checkpoint(database)


def insert_modules(database: Path, count: int) -> None:
    """Insert `count` small settings modules, so a restore point has many items."""
    from server.storage.db.modules_repo import canonical_json
    from server.storage.db.tables import ModuleRow

    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    now = datetime.now(UTC)
    rows = [
        {"name": f"zone-{n:04d}", "settings": canonical_json({"zone": n, "volume": -20 + n % 20}), "updated_at": now}
        for n in range(count)
    ]
    try:
        with engine.begin() as connection:
            connection.execute(insert(ModuleRow), rows)
    finally:
        engine.dispose()


def checkpoint(database: Path) -> None:
    """Fold the write-ahead log into the database file, as SQLite does on its own in time."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


def insert_varied_restore_points(database: Path, count: int, schedules: tuple[str, str]) -> None:
    """Insert `count` restore points, one a minute going back from now, with a history's mix:
    of every 20, 12 made by the nightly schedule (`schedules[0]`, label "Nightly ..."), 4 by
    the hourly one (label "Hourly ..."), 3 manual ones with a note and 1 safety one; every
    25th is pinned."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    now = datetime.now(UTC)
    empty = manifest_id([])
    try:
        with engine.begin() as connection:
            if connection.scalar(select(ManifestRow.id).where(ManifestRow.id == empty)) is None:
                connection.execute(insert(ManifestRow), [{"id": empty}])
            for start in range(0, count, BATCH):
                rows = []
                for n in range(start, min(count, start + BATCH)):
                    kind = n % 20
                    if kind < 12:
                        origin, schedule, label, note = "SCHEDULED", schedules[0], f"Nightly {n}", None
                    elif kind < 16:
                        origin, schedule, label, note = "SCHEDULED", schedules[1], f"Hourly {n}", None
                    elif kind < 19:
                        origin, schedule, label = "MANUAL", None, f"Before changing zone {n % 300}"
                        note = f"checked by the night shift ({n})"
                    else:
                        origin, schedule, label, note = "SAFETY", None, f"Before applying {n}", None
                    rows.append(
                        {
                            "id": f"rp_{n:024x}",
                            "label": label,
                            "note": note,
                            "origin": origin,
                            "schedule_id": schedule,
                            "pinned": n % 25 == 0,
                            "created_at": now - timedelta(minutes=n),
                            "created_by": "cron" if schedule else "admin",
                            "size_bytes": 3_000_000 + n,
                            "stored_bytes": n % 5000,
                            "item_count": 7 + n % 50,
                            "checksum": hashlib.sha256(str(n).encode()).hexdigest(),
                            "server_version": "0.1.0",
                            "manifest_id": empty,
                        }
                    )
                connection.execute(insert(RestorePointRow), rows)
    finally:
        engine.dispose()
    checkpoint(database)
