"""The database source against a real SQLite file and a real PostgreSQL database: snapshot,
the JSON Lines files, apply in foreign-key order, and refusals before anything changes.
(Applying through the API belongs to the apply issue; here the source's apply is called
with the blobs of a capture.)"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from server.model.errors import OperationFailed
from server.sources.database.source import DatabaseSource
from server.storage.blobs.content_store import ContentStore
from tests.support.capture import capture

SQLITE_SCHEMA = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo BLOB, score REAL,
                     active BOOLEAN, born DATE, prefs JSON);
CREATE TABLE child (id INTEGER PRIMARY KEY AUTOINCREMENT, parent_id INTEGER NOT NULL REFERENCES parent(id),
                    note TEXT);
CREATE TABLE loose (a, b);
INSERT INTO parent VALUES
  (1, 'Ada ☕', x'00ff10', 1.5, 1, '1815-12-10', '{"theme": "dark", "sizes": [1, 2]}'),
  (2, 'Bob', NULL, 1e308 * 10, 0, NULL, NULL),
  (3, 'Ünïcode "quoted"', x'', -0.25, NULL, '2024-02-29', 'null');
INSERT INTO child (parent_id, note) VALUES (1, 'first'), (2, 'second'), (1, NULL);
INSERT INTO loose VALUES (1, 'a'), ('text', x'01'), (2.5, NULL), (NULL, 7);
"""


def sqlite_rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("parent", "child", "loose")
        }


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.executescript(SQLITE_SCHEMA)
    return path


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs")


def sqlite_source(path: Path, tmp_path: Path, **options: object) -> DatabaseSource:
    return DatabaseSource("app", f"sqlite:///{path}", spool_dir=tmp_path / "spool", **options)  # type: ignore[arg-type]


async def test_sqlite_round_trip(sqlite_db: Path, tmp_path: Path, store: ContentStore) -> None:
    before = sqlite_rows(sqlite_db)
    source = sqlite_source(sqlite_db, tmp_path)
    tally = await capture(source, store)
    assert [e.path for e in tally.entries] == ["child.jsonl", "loose.jsonl", "parent.jsonl"]

    with sqlite3.connect(sqlite_db) as db:
        db.executescript("""
            PRAGMA foreign_keys = ON;
            DELETE FROM child WHERE id = 1;
            UPDATE parent SET name = 'changed', photo = NULL;
            INSERT INTO parent (id, name) VALUES (9, 'added later');
            INSERT INTO child (parent_id, note) VALUES (9, 'added later');
            DELETE FROM loose;
        """)

    await source.apply(tally.entries, store.open)

    assert sqlite_rows(sqlite_db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "blobs", "spool"]
    assert list((tmp_path / "spool").iterdir()) == []  # spooled tables have no names


async def test_table_files_are_human_readable_json_lines(sqlite_db: Path, tmp_path: Path, store: ContentStore) -> None:
    tally = await capture(sqlite_source(sqlite_db, tmp_path), store)
    entry = next(e for e in tally.entries if e.path == "parent.jsonl")
    with store.open(entry.sha256 or "") as blob:
        lines = blob.read().decode().splitlines()
    header = json.loads(lines[0])
    assert header["table"] == "parent" and header["primaryKey"] == ["id"]
    assert header["columns"][:3] == [
        {"name": "id", "type": "INTEGER"},
        {"name": "name", "type": "TEXT"},
        {"name": "photo", "type": "BLOB"},
    ]
    assert json.loads(lines[1]) == {
        "id": 1,
        "name": "Ada ☕",
        "photo": {"$base64": "AP8Q"},
        "score": 1.5,
        "active": 1,
        "born": "1815-12-10",
        "prefs": '{"theme": "dark", "sizes": [1, 2]}',
    }
    assert json.loads(lines[2])["score"] == {"$float": "Infinity"}
    assert "Ünïcode" in lines[3]  # not escaped: readable as it is
    assert len(lines) == 4


async def test_unchanged_tables_are_reused_without_rereading(
    sqlite_db: Path, tmp_path: Path, store: ContentStore
) -> None:
    source = sqlite_source(sqlite_db, tmp_path)
    first = await capture(source, store)
    second = await capture(source, store)
    assert second.entries == first.entries and second.stored_bytes == 0 and second.reused == 3
    with sqlite3.connect(sqlite_db) as db:
        db.execute("UPDATE loose SET b = 'changed' WHERE a = 1")
    third = await capture(source, store)
    changed = next(e for e in third.entries if e.path == "loose.jsonl")
    assert third.reused == 2 and third.stored_bytes == changed.size  # that table's file alone


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        ("ALTER TABLE loose ADD COLUMN c TEXT", "column loose.c is not in the restore point"),
        ("ALTER TABLE child DROP COLUMN note", "column child.note is missing from the database"),
        ("DROP TABLE loose", "table 'loose' is missing from the database"),
        ("CREATE TABLE extra (x)", "table 'extra' is in the database but not in the restore point"),
        ("ALTER TABLE loose RENAME COLUMN b TO bee", "column loose.b is missing from the database"),
    ],
)
async def test_sqlite_schema_mismatch_is_refused_before_anything_changes(
    sqlite_db: Path, tmp_path: Path, store: ContentStore, change: str, difference: str
) -> None:
    source = sqlite_source(sqlite_db, tmp_path)
    tally = await capture(source, store)
    with sqlite3.connect(sqlite_db) as db:
        db.execute("DELETE FROM child WHERE id = 2")
        db.execute(change)
    current = sqlite3.connect(sqlite_db).execute("SELECT count(*) FROM child").fetchone()

    with pytest.raises(OperationFailed) as raised:
        await source.apply(tally.entries, store.open)

    assert raised.value.code == "SCHEMA_MISMATCH"
    assert raised.value.message.startswith("source 'app': the database does not match the restore point")
    assert difference in raised.value.message
    assert sqlite3.connect(sqlite_db).execute("SELECT count(*) FROM child").fetchone() == current == (2,)


async def test_only_the_chosen_tables_are_captured_and_replaced(
    sqlite_db: Path, tmp_path: Path, store: ContentStore
) -> None:
    source = sqlite_source(sqlite_db, tmp_path, tables=["loose"])
    tally = await capture(source, store)
    assert [e.path for e in tally.entries] == ["loose.jsonl"]
    with sqlite3.connect(sqlite_db) as db:
        db.execute("DELETE FROM loose")
        db.execute("DELETE FROM child")
    await source.apply(tally.entries, store.open)
    rows = sqlite_rows(sqlite_db)
    assert len(rows["loose"]) == 4 and rows["child"] == []


async def test_a_table_outside_the_source_that_references_it_is_refused(
    sqlite_db: Path, tmp_path: Path, store: ContentStore
) -> None:
    source = sqlite_source(sqlite_db, tmp_path, tables=["parent"])
    tally = await capture(source, store)
    with pytest.raises(OperationFailed, match="table 'child', not in this source, references 'parent'"):
        await source.apply(tally.entries, store.open)


async def test_missing_table_or_file_fails_naming_the_source(sqlite_db: Path, tmp_path: Path) -> None:
    with pytest.raises(OperationFailed, match="source 'app': table 'nope' does not exist") as raised:
        await sqlite_source(sqlite_db, tmp_path, tables=["parent", "nope"]).capture()
    assert raised.value.code == "SOURCE_UNAVAILABLE"
    missing = sqlite_source(tmp_path / "gone.db", tmp_path)
    with pytest.raises(
        OperationFailed, match=r"source 'app': database .* is unreachable: database file .* does not exist"
    ):
        await missing.capture()
    assert not (tmp_path / "gone.db").exists()  # never created by looking
    info = await missing.describe()
    assert not info.reachable and "does not exist" in (info.problem or "")


# -- PostgreSQL ------------------------------------------------------------------------------

PG_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE team (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE person (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id int NOT NULL REFERENCES team(id),
    manager_id bigint REFERENCES person(id) DEFERRABLE,
    name varchar(40) NOT NULL, salary numeric(10,2), born date, seen timestamptz,
    badge uuid, prefs jsonb, photo bytea, active boolean, ratio double precision,
    tags text[], mood mood, notice interval, "odd %name:" text,
    name_upper text GENERATED ALWAYS AS (upper(name)) STORED
);
CREATE TABLE note (body text);  -- no primary key
INSERT INTO team (name) VALUES ('ops'), ('dev');
INSERT INTO person (team_id, manager_id, name, salary, born, seen, badge, prefs, photo, active,
                    ratio, tags, mood, notice, "odd %name:") VALUES
  (1, NULL, 'Ada', 1234.50, '1815-12-10', '2024-01-02 03:04:05.123456+02',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"theme": "dark", "n": [1, 2.5, null]}', '\\x00ff',
   true, 'NaN', '{a,"b c"}', 'happy', '1 day 02:00:00', 'x%y'),
  (2, 1, 'Bob', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0.1, NULL, NULL, NULL, NULL);
INSERT INTO note VALUES ('zeta'), ('alpha'), (NULL);
"""


def pg_rows(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as db:
        return {
            table: db.execute(f"SELECT t::text FROM {table} t ORDER BY 1").fetchall()
            for table in ("team", "person", "note")
        }


@pytest.fixture
def pg_db(postgres_source_url: str) -> str:
    with psycopg.connect(postgres_source_url, autocommit=True) as db:
        db.execute(PG_SCHEMA)
    return postgres_source_url


async def test_postgres_round_trip(pg_db: str, tmp_path: Path, store: ContentStore) -> None:
    before = pg_rows(pg_db)
    source = DatabaseSource("app", pg_db, spool_dir=tmp_path / "spool")
    tally = await capture(source, store)
    assert [e.path for e in tally.entries] == ["note.jsonl", "person.jsonl", "team.jsonl"]
    with store.open(next(e.sha256 for e in tally.entries if e.path == "person.jsonl") or "") as blob:
        header, ada = (json.loads(line) for line in blob.read().decode().splitlines()[:2])
    assert {"name": "salary", "type": "numeric(10,2)"} in header["columns"]
    assert "name_upper" not in [c["name"] for c in header["columns"]]  # generated: derived
    assert ada["salary"] == "1234.50" and ada["prefs"] == {"n": [1, 2.5, None], "theme": "dark"}
    assert ada["seen"] == "2024-01-02 01:04:05.123456+00" and ada["ratio"] == {"$float": "NaN"}

    with psycopg.connect(pg_db, autocommit=True) as db:
        db.execute("DELETE FROM person WHERE id = 2")
        db.execute("UPDATE person SET name = 'changed', prefs = '{}'")
        db.execute("INSERT INTO team (name) VALUES ('later')")
        db.execute("INSERT INTO note VALUES ('later')")

    await source.apply(tally.entries, store.open)

    assert pg_rows(pg_db) == before
    with psycopg.connect(pg_db, autocommit=True) as db:  # sequences were moved past the rows
        assert db.execute("INSERT INTO team (name) VALUES ('next') RETURNING id").fetchone() == (3,)
        assert db.execute("INSERT INTO person (team_id, name) VALUES (1, 'n') RETURNING id").fetchone() == (3,)
        assert db.execute("SELECT name_upper FROM person WHERE id = 1").fetchone() == ("ADA",)


async def test_postgres_schema_mismatch_is_refused_before_anything_changes(
    pg_db: str, tmp_path: Path, store: ContentStore
) -> None:
    source = DatabaseSource("app", pg_db, spool_dir=tmp_path / "spool")
    tally = await capture(source, store)
    with psycopg.connect(pg_db, autocommit=True) as db:
        db.execute("DELETE FROM note")
        db.execute("ALTER TABLE person ALTER COLUMN salary TYPE numeric(12,2)")
        db.execute("ALTER TABLE team ADD COLUMN motto text")
    after_change = pg_rows(pg_db)

    with pytest.raises(OperationFailed) as raised:
        await source.apply(tally.entries, store.open)

    assert raised.value.code == "SCHEMA_MISMATCH"
    assert (
        "column person.salary is numeric(12,2) in the database but numeric(10,2) in the restore point"
        in raised.value.message
    )
    assert "column team.motto is not in the restore point" in raised.value.message
    assert pg_rows(pg_db) == after_change


async def test_postgres_failure_mid_apply_changes_nothing(pg_db: str, tmp_path: Path, store: ContentStore) -> None:
    source = DatabaseSource("app", pg_db, spool_dir=tmp_path / "spool")
    tally = await capture(source, store)
    with psycopg.connect(pg_db, autocommit=True) as db:
        db.execute("DELETE FROM note")
        db.execute("ALTER TABLE note ADD CONSTRAINT no_alpha CHECK (body <> 'alpha')")  # rows now fail
    with pytest.raises(OperationFailed, match="source 'app': table 'note': .*no_alpha.*nothing was changed") as raised:
        await source.apply(tally.entries, store.open)
    assert raised.value.code == "APPLY_FAILED"
    rows = pg_rows(pg_db)
    assert rows["note"] == [] and len(rows["person"]) == 2 and len(rows["team"]) == 2


async def test_postgres_snapshot_is_one_consistent_moment(pg_db: str, tmp_path: Path, store: ContentStore) -> None:
    """A writer keeps moving rows between two tables while the snapshot reads them one after
    the other: in one REPEATABLE READ transaction the total never changes."""
    with psycopg.connect(pg_db, autocommit=True) as db:
        db.execute("CREATE TABLE a_side (id int PRIMARY KEY, pad text)")
        db.execute("CREATE TABLE b_side (id int PRIMARY KEY, pad text)")
        db.execute("INSERT INTO a_side SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
    stop = threading.Event()

    def mover() -> None:
        with psycopg.connect(pg_db) as db:
            n = 0
            while not stop.is_set():
                n = n % 20000 + 1
                with db.transaction():
                    if db.execute("DELETE FROM a_side WHERE id = %s", (n,)).rowcount:
                        db.execute("INSERT INTO b_side VALUES (%s, 'moved')", (n,))

    source = DatabaseSource("app", pg_db, tables=["a_side", "b_side"], spool_dir=tmp_path / "spool")
    thread = threading.Thread(target=mover)
    thread.start()
    try:
        await asyncio.sleep(0.2)
        for _ in range(3):
            items = await source.capture()
            total = 0
            for item in items:
                assert item.open is not None
                with item.open() as stream:
                    total += sum(1 for _ in stream) - 1  # minus the header
            assert total == 20000
    finally:
        stop.set()
        thread.join()


async def test_unreachable_postgres_fails_naming_the_source(tmp_path: Path) -> None:
    source = DatabaseSource("remote", "postgresql+psycopg://postgres@127.0.0.1:9/none", spool_dir=tmp_path)
    with pytest.raises(OperationFailed) as raised:
        await source.capture()
    assert raised.value.code == "SOURCE_UNAVAILABLE"
    assert raised.value.message.startswith(
        "source 'remote': database postgresql://postgres@127.0.0.1:9/none is unreachable: "
    )
    info = await source.describe()
    assert not info.reachable and info.problem and "127.0.0.1" in info.problem


async def test_postgres_schema_option_and_a_missing_schema(pg_db: str, tmp_path: Path, store: ContentStore) -> None:
    with psycopg.connect(pg_db, autocommit=True) as db:
        db.execute("CREATE SCHEMA app")
        db.execute("CREATE TABLE app.setting (key text PRIMARY KEY, value text)")
        db.execute("INSERT INTO app.setting VALUES ('volume', '3')")
    source = DatabaseSource("app", pg_db, schema="app", spool_dir=tmp_path / "spool")
    tally = await capture(source, store)
    assert [e.path for e in tally.entries] == ["setting.jsonl"]
    with psycopg.connect(pg_db, autocommit=True) as db:
        db.execute("UPDATE app.setting SET value = '11'")
    await source.apply(tally.entries, store.open)
    with psycopg.connect(pg_db) as db:
        assert db.execute("SELECT value FROM app.setting").fetchall() == [("3",)]

    missing = DatabaseSource("app", pg_db, schema="nope", spool_dir=tmp_path / "spool")
    with pytest.raises(OperationFailed, match="source 'app': schema 'nope' does not exist"):
        await missing.capture()
    assert (await missing.describe()).problem == "schema 'nope' does not exist"
