"""applyRestorePoint(items:) and applyPreview(items:) through the real server: only the named
items go back (a file, a folder, a settings module, one setting by its RFC 6901 pointer, a
database table); everything else in their sources stays as it is now. The same machinery as a
whole apply: a safety restore point (of the touched sources), expectedFingerprint and CONFLICT,
the report of what changed, the restart as the caller chose it. Every bad input is refused
with a clear error and changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import (
    OPERATION_FIELDS,
    create_and_wait,
    execute,
    execute_errors,
    update_settings,
    wait_for_operation,
)
from tests.support.apply import blob_path, modules, plant_restore_point, restore_points
from tests.support.config_file import write_config
from tests.support.folder_source import make_tree, tree_state
from tests.support.in_process import InProcessServer

APPLY = f"""mutation($id: ID!, $confirm: String!, $items: [ItemSelection!], $sources: [String!],
                     $fingerprint: String, $safety: Boolean, $restart: Boolean) {{
    applyRestorePoint(restorePointId: $id, confirm: $confirm, items: $items, sources: $sources,
                      expectedFingerprint: $fingerprint, createSafetyRestorePoint: $safety, restart: $restart) {{
        operation {{ {OPERATION_FIELDS} }} userErrors {{ code message field }} }} }}"""
DONE = f"""query($id: ID!) {{ operation(id: $id) {{ {OPERATION_FIELDS}
    changes {{ added removed changed unchanged }} safetyRestorePoint {{ id origin }} log {{ message }} }} }}"""
PREVIEW = """query($id: ID!, $items: [ItemSelection!], $sources: [String!]) {
    applyPreview(restorePointId: $id, items: $items, sources: $sources) {
        summary { added removed changed unchanged } fingerprint
        changes(first: 100) { edges { node { source path kind } } } } }"""
ENTRIES = "query($id: ID!) { restorePoint(id: $id) { entries { source path sha256 } } }"
OPERATIONS = "{ operations(first: 100) { totalCount } }"
RESTARTED = "Restarting in process"


class Site:
    """A server whose sources are the settings store, the folder `site` and a SQLite database
    `appdb` with two tables, `users` and `orders` (each order references a user)."""

    def __init__(self, make_server: Callable[..., InProcessServer], tmp_path: Path, **env: str) -> None:
        self.db = tmp_path / "app.db"
        with sqlite3.connect(self.db) as conn:
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), item TEXT)"
            )
            conn.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ada"), (2, "bob"), (3, "cy")])
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(1, 1, "lamp"), (2, 2, "desk")])
        extra = f'\n[[sources]]\nname = "appdb"\nkind = "database"\nurl = "sqlite:///{self.db}"\n'
        config = write_config(tmp_path, settings=True, page=False, extra=extra)
        self.site = tmp_path / "site"
        make_tree(self.site)
        self.server = make_server("data", BACKUPS_CONFIG=str(config), **env).start()

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608 (a test's own names)

    def sql(self, *statements: str) -> None:
        with sqlite3.connect(self.db) as conn:
            for statement in statements:
                conn.execute(statement)

    async def state(self) -> tuple[Any, ...]:
        """Everything an apply could change, and the restore points."""
        return (
            tree_state(self.site),
            await modules(self.server),
            self.rows("users"),
            self.rows("orders"),
            await restore_points(self.server),
        )

    async def apply(self, point_id: str, items: list[dict[str, Any]] | None, **variables: Any) -> dict[str, Any]:
        data = await execute(self.server, APPLY, id=point_id, confirm=point_id, items=items, **variables)
        return data["applyRestorePoint"]

    async def applied(self, point_id: str, items: list[dict[str, Any]], **variables: Any) -> dict[str, Any]:
        payload = await self.apply(point_id, items, **variables)
        assert payload["userErrors"] == [], payload
        final = await wait_for_operation(self.server, payload["operation"]["id"])
        assert final["status"] == "SUCCEEDED", final
        return (await execute(self.server, DONE, id=final["id"]))["operation"]

    async def failed(self, point_id: str, items: list[dict[str, Any]], code: str) -> dict[str, Any]:
        payload = await self.apply(point_id, items)
        assert payload["userErrors"] == [], payload
        final = await wait_for_operation(self.server, payload["operation"]["id"])
        assert final["status"] == "FAILED" and final["error"]["code"] == code, final
        return final

    async def refused(self, point_id: str, items: list[dict[str, Any]] | None, code: str, **variables: Any) -> str:
        """The apply is refused as a userError, no operation starts and nothing changes; its message."""
        before, operations = await self.state(), await execute(self.server, OPERATIONS)
        payload = await self.apply(point_id, items, **variables)
        assert payload["operation"] is None, payload
        error = payload["userErrors"][0]
        assert error["code"] == code and error["field"] == "items", (items, error)
        assert await self.state() == before
        assert await execute(self.server, OPERATIONS) == operations
        return error["message"]

    async def point(self, label: str = "then") -> str:
        return (await create_and_wait(self.server, label))["restorePoint"]["id"]


def messages(done: dict[str, Any]) -> list[str]:
    return [line["message"] for line in done["log"]]


async def safety_sources(server: InProcessServer, done: dict[str, Any]) -> set[str]:
    safety = done["safetyRestorePoint"]
    assert safety["origin"] == "SAFETY"
    entries = (await execute(server, ENTRIES, id=safety["id"]))["restorePoint"]["entries"]
    return {entry["source"] for entry in entries}


async def test_one_file_back(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    main_then = (s.site / "conf.d" / "main.yaml").read_bytes()
    point = await s.point()
    (s.site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (s.site / "media" / "logo.bin").write_bytes(b"changed since")  # another file changed since
    (s.site / "notes.txt").write_text("added since\n")
    await update_settings(s.server, "audio", {"masterVolume": 3.0})
    s.sql("UPDATE users SET name = 'bobby' WHERE id = 2")
    tree_now, settings_now, users_now = tree_state(s.site), await modules(s.server), s.rows("users")

    done = await s.applied(point, [{"source": "site", "paths": ["conf.d/main.yaml"]}])
    assert (s.site / "conf.d" / "main.yaml").read_bytes() == main_then
    expected = dict(tree_now)
    expected["conf.d/main.yaml"] = tree_state(s.site)["conf.d/main.yaml"]
    assert tree_state(s.site) == expected  # everything else in the folder as it is now
    assert (s.site / "media" / "logo.bin").read_bytes() == b"changed since"
    assert await modules(s.server) == settings_now and s.rows("users") == users_now
    # The same machinery: a safety restore point (of the touched source only), the report,
    # a log naming the item, and a restart (a folder's files are read at a start).
    assert await safety_sources(s.server, done) == {"site"}
    # A folder item goes back in place (only its path is read): the report counts the items
    # put back, not the untouched rest of the source.
    assert done["changes"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 0}
    lines = messages(done)
    assert any("Putting back 1 item(s): site/conf.d/main.yaml" in m for m in lines), lines
    assert "Changed: site/conf.d/main.yaml" in lines
    assert any(m.startswith(RESTARTED) for m in lines)
    assert any(m.startswith("Read back: the configuration matches") for m in lines), lines


async def test_a_subfolder_back(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    conf_then = {k: v for k, v in tree_state(s.site).items() if k.startswith("conf.d")}
    (s.site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (s.site / "conf.d" / "Ünïcödé ☃.json").unlink()  # removed since: comes back
    (s.site / "conf.d" / "added.txt").write_text("new\n")  # added since under the folder: goes
    (s.site / "conf.d" / "deeper").mkdir()
    (s.site / "conf.d" / "deeper" / "x.txt").write_text("x\n")
    (s.site / "media" / "logo.bin").write_bytes(b"changed since")
    (s.site / "notes.txt").write_text("added since, outside the folder\n")
    outside_now = {k: v for k, v in tree_state(s.site).items() if not k.startswith("conf.d")}

    done = await s.applied(point, [{"source": "site", "paths": ["conf.d"]}])
    now = tree_state(s.site)
    assert {k: v for k, v in now.items() if k.startswith("conf.d")} == conf_then
    assert {k: v for k, v in now.items() if not k.startswith("conf.d")} == outside_now
    assert (done["changes"]["added"], done["changes"]["removed"], done["changes"]["changed"]) == (1, 3, 1)
    assert "Removed: site/conf.d/added.txt" in messages(done)


async def test_one_module_and_one_setting_back(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    then = await modules(s.server)
    point = await s.point()
    await update_settings(s.server, "audio", {"masterVolume": 3.0, "newKey": {"deep": [1]}})
    await update_settings(s.server, "lighting", {"universe": 9})
    tree_now, lighting_now = tree_state(s.site), (await modules(s.server))["lighting"]

    # A whole module: as the restore point has it; the other modules as they are now; settings
    # are read as they change, so no restart is needed (null: as the items need).
    done = await s.applied(point, [{"source": "settings", "paths": ["audio.json"]}])
    now = await modules(s.server)
    assert now["audio"] == then["audio"] and now["lighting"] == lighting_now != then["lighting"]
    assert tree_state(s.site) == tree_now
    assert await safety_sources(s.server, done) == {"settings"}
    assert not any(m.startswith(RESTARTED) for m in messages(done))
    assert any(m.startswith("No restart") for m in messages(done))

    # One setting by its pointer: merged into the module as it is now.
    await update_settings(s.server, "audio", {"masterVolume": 3.0, "newKey": {"deep": [1]}})
    await update_settings(s.server, "audio", {"dsp": {"port": 2323}})
    done = await s.applied(point, [{"source": "settings", "paths": ["audio.json#/masterVolume"]}])
    audio = (await modules(s.server))["audio"]
    assert audio["masterVolume"] == then["audio"]["masterVolume"]
    assert audio["newKey"] == {"deep": [1]} and audio["dsp"]["port"] == 2323  # the rest as it is now
    assert any("Putting back 1 item(s): settings/audio.json#/masterVolume" in m for m in messages(done))

    # A key the restore point does not have, but the module has now: removed now. Two pointers
    # into one module, and one into a list, in one apply.
    await update_settings(s.server, "audio", {"zones": [{"name": "Somewhere"}]})
    done = await s.applied(
        point,
        [{"source": "settings", "paths": ["audio.json#/newKey", "audio.json#/dsp/port", "audio.json#/zones/0"]}],
    )
    audio = (await modules(s.server))["audio"]
    assert "newKey" not in audio
    assert audio["dsp"] == then["audio"]["dsp"]
    assert audio["zones"][0] == then["audio"]["zones"][0] and audio["zones"] == [then["audio"]["zones"][0]]
    assert (await modules(s.server))["lighting"] == lighting_now


async def test_one_table_back(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    users_then = s.rows("users")
    point = await s.point()
    s.sql("UPDATE users SET name = 'bobby' WHERE id = 2", "DELETE FROM users WHERE id = 3")
    s.sql("INSERT INTO orders VALUES (3, 1, 'chair')")
    orders_now = s.rows("orders")

    done = await s.applied(point, [{"source": "appdb", "paths": ["users"]}])
    assert s.rows("users") == users_then
    assert s.rows("orders") == orders_now  # the other table as it is now
    assert "Changed: appdb/users.jsonl" in messages(done)
    assert await safety_sources(s.server, done) == {"appdb"}
    assert any(m.startswith(RESTARTED) for m in messages(done))


async def test_a_table_the_others_no_longer_fit_is_refused_naming_the_key(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    s.sql("INSERT INTO users VALUES (4, 'dee')", "INSERT INTO orders VALUES (3, 4, 'chair')")  # needs user 4
    before = (s.rows("users"), s.rows("orders"))
    final = await s.failed(point, [{"source": "appdb", "paths": ["users"]}], "APPLY_FAILED")
    assert "foreign key of table 'orders' on table 'users'" in final["error"]["message"], final
    assert "nothing was changed" in final["error"]["message"]
    assert (s.rows("users"), s.rows("orders")) == before


async def test_preview_of_items(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    (s.site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (s.site / "notes.txt").write_text("added since\n")
    await update_settings(s.server, "audio", {"masterVolume": 3.0, "newKey": 1})
    await update_settings(s.server, "lighting", {"universe": 9})

    def preview(items: list[dict[str, Any]]) -> Any:
        return execute(s.server, PREVIEW, id=point, items=items)

    shown = (await preview([{"source": "site", "paths": ["conf.d/main.yaml"]}]))["applyPreview"]
    assert shown["summary"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 8}
    assert [e["node"]["path"] for e in shown["changes"]["edges"]] == ["conf.d/main.yaml"]

    shown = (await preview([{"source": "settings", "paths": ["audio.json#/masterVolume"]}]))["applyPreview"]
    assert [(e["node"]["path"], e["node"]["kind"]) for e in shown["changes"]["edges"]] == [("audio.json", "CHANGED")]
    shown = (await preview([{"source": "settings", "paths": ["lighting.json#/universe"]}]))["applyPreview"]
    assert [e["node"]["path"] for e in shown["changes"]["edges"]] == ["lighting.json"]

    # Applying what was previewed reports the same, and the preview then shows nothing to do.
    items = [{"source": "site", "paths": ["conf.d/main.yaml"]}]
    fingerprint = (await preview(items))["applyPreview"]["fingerprint"]
    done = await s.applied(point, items, fingerprint=fingerprint)
    assert done["changes"]["changed"] == 1
    assert (await preview(items))["applyPreview"]["summary"]["changed"] == 0

    errors = await execute_errors(s.server, PREVIEW, id=point, items=[{"source": "site", "paths": ["../x"]}])
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT" and "'..'" in errors[0]["message"]


async def test_conflict_and_no_safety_restore_point(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    (s.site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    items = [{"source": "site", "paths": ["conf.d/main.yaml"]}]
    seen = (await execute(s.server, PREVIEW, id=point, items=items))["applyPreview"]["fingerprint"]
    await update_settings(s.server, "audio", {"masterVolume": 2.0})  # changed since the preview
    before = await s.state()
    payload = await s.apply(point, items, fingerprint=seen)
    assert payload["operation"] is None and payload["userErrors"][0]["code"] == "CONFLICT", payload
    assert await s.state() == before

    # Without a safety restore point: the touched source is still captured first (the merge
    # needs it, and so would a rollback), then let go; no restore point is added.
    points = await restore_points(s.server)
    done = await s.applied(point, items, safety=False)
    assert done["safetyRestorePoint"] is None
    assert await restore_points(s.server) == points
    assert (s.site / "conf.d" / "main.yaml").read_text() == "listen: 80\nname: Hall A\n"


async def test_restart_is_the_callers_choice(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    await update_settings(s.server, "audio", {"masterVolume": 3.0})
    done = await s.applied(point, [{"source": "settings", "paths": ["audio.json"]}], restart=True)
    assert any(m.startswith(RESTARTED) for m in messages(done))
    (s.site / "notes.txt").write_text("added since\n")
    (s.site / "start.sh").write_text("changed\n")
    done = await s.applied(point, [{"source": "site", "paths": ["start.sh"]}], restart=False)
    assert not any(m.startswith(RESTARTED) for m in messages(done))
    assert (s.site / "start.sh").read_text() == "#!/bin/sh\nexec mediaserver\n"


BAD_ITEMS: list[tuple[list[dict[str, Any]], str, str]] = [
    ([], "INVALID_INPUT", "`items` is empty"),
    ([{"source": "site", "paths": []}], "INVALID_INPUT", "no paths are named"),
    ([{"source": "nosuch", "paths": ["a"]}], "INVALID_INPUT", "no source named 'nosuch'"),
    ([{"source": "site", "paths": ["nosuch.txt"]}], "INVALID_INPUT", "has no item 'nosuch.txt'"),
    ([{"source": "site", "paths": ["conf.d/../start.sh"]}], "INVALID_INPUT", "'..'"),
    ([{"source": "site", "paths": ["/etc/passwd"]}], "INVALID_INPUT", "is absolute"),
    ([{"source": "site", "paths": ["conf.d/main.yaml\x00"]}], "INVALID_INPUT", "NUL byte"),
    ([{"source": "site", "paths": [""]}], "INVALID_INPUT", "use `sources`"),
    ([{"source": "settings", "paths": ["audio.json#/noSuchKey"]}], "INVALID_INPUT", "neither in the restore point"),
    ([{"source": "settings", "paths": ["audio.json#masterVolume"]}], "INVALID_INPUT", "not an RFC 6901"),
    ([{"source": "settings", "paths": ["audio.json#/x~2"]}], "INVALID_INPUT", "not an RFC 6901"),
    ([{"source": "settings", "paths": ["audio"]}], "INVALID_INPUT", "module documents"),
    ([{"source": "settings", "paths": ["audio.json/volume"]}], "INVALID_INPUT", "module documents"),
    ([{"source": "site", "paths": ["conf.d/main.yaml#/listen"]}], "INVALID_INPUT", "only in the settings source"),
    ([{"source": "appdb", "paths": ["nosuch"]}], "INVALID_INPUT", "has no item 'nosuch'"),
    (
        [{"source": "site", "paths": ["start.sh", "conf.d", "start.sh"]}],
        "INVALID_INPUT",
        "'start.sh' of source 'site' is named twice",
    ),
]


@pytest.mark.parametrize(("items", "code", "needle"), BAD_ITEMS, ids=[needle for _, _, needle in BAD_ITEMS])
async def test_bad_items_are_refused_and_nothing_changes(
    make_server, tmp_path: Path, items: list[dict[str, Any]], code: str, needle: str
) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    await update_settings(s.server, "audio", {"masterVolume": 3.0})
    (s.site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    message = await s.refused(point, items, code)
    assert needle in message, message
    errors = await execute_errors(s.server, PREVIEW, id=point, items=items)  # the preview refuses it too
    assert errors[0]["extensions"]["code"] == code and needle in errors[0]["message"], errors


async def test_items_with_sources_and_a_source_no_longer_configured(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    message = await s.refused(point, [{"source": "site", "paths": ["start.sh"]}], "INVALID_INPUT", sources=["site"])
    assert "not both" in message
    old = plant_restore_point(s.server, {("mediaserver", "config.yaml"): b"port: 80\n"})
    message = await s.refused(old, [{"source": "mediaserver", "paths": ["config.yaml"]}], "UNKNOWN_SOURCE")
    assert "'mediaserver'" in message and "not configured" in message
    # A configured source the restore point holds nothing of.
    message = await s.refused(old, [{"source": "site", "paths": ["start.sh"]}], "INVALID_INPUT")
    assert "holds nothing of source 'site'" in message


async def test_a_damaged_item_is_refused_and_nothing_is_written(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path, BACKUPS_PACK_SMALL_BLOBS="false")
    point = await s.point()
    (s.site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    await update_settings(s.server, "audio", {"masterVolume": 3.0})
    entries = (await execute(s.server, ENTRIES, id=point))["restorePoint"]["entries"]
    for path in ("conf.d/main.yaml", "audio.json"):
        victim = blob_path(s.server, next(e["sha256"] for e in entries if e["path"] == path))
        victim.write_bytes(victim.read_bytes().replace(b"80", b"81").replace(b"-12.5", b"-99.5"))
    before = await s.state()
    for item in (
        {"source": "site", "paths": ["conf.d/main.yaml"]},
        {"source": "settings", "paths": ["audio.json#/dsp"]},
    ):
        final = await s.failed(point, [item], "CONTENT_DAMAGED")
        assert item["paths"][0].split("#")[0] in final["error"]["message"], final
        assert "nothing was changed" in final["error"]["message"]
        assert await s.state() == before  # no safety restore point is left either


async def test_a_table_whose_columns_changed_is_a_schema_mismatch(make_server, tmp_path: Path) -> None:
    s = Site(make_server, tmp_path)
    point = await s.point()
    s.sql("ALTER TABLE users ADD COLUMN email TEXT", "UPDATE users SET name = 'bobby' WHERE id = 2")
    before = await s.state()
    items = [{"source": "appdb", "paths": ["users"]}]
    final = await s.failed(point, items, "SCHEMA_MISMATCH")
    assert "users.email" in final["error"]["message"] and "nothing was changed" in final["error"]["message"]
    assert await s.state() == before
    errors = await execute_errors(s.server, PREVIEW, id=point, items=items)
    assert errors[0]["extensions"]["code"] == "SCHEMA_MISMATCH", errors
    # The other table, unchanged in its columns, still goes back on its own.
    s.sql("DELETE FROM orders WHERE id = 2")
    await s.applied(point, [{"source": "appdb", "paths": ["orders"]}])
    assert s.rows("orders") == [(1, 1, "lamp"), (2, 2, "desk")]


async def test_one_table_back_in_postgresql(make_server, tmp_path: Path, postgres_source_url: str) -> None:
    """A PostgreSQL database source: one table back, the other as it is now; a table the other
    no longer fits is refused naming PostgreSQL's constraint, and nothing changes."""
    import psycopg

    def rows(table: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(postgres_source_url) as db:
            return db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608 (a test's own names)

    def sql(*statements: str) -> None:
        with psycopg.connect(postgres_source_url, autocommit=True) as db:
            for statement in statements:
                db.execute(statement)  # type: ignore[arg-type] (a test's own statements)

    sql(
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id integer REFERENCES users(id), item text)",
        "INSERT INTO users (name) VALUES ('ada'), ('bob'), ('cy')",
        "INSERT INTO orders (user_id, item) VALUES (1, 'lamp'), (2, 'desk')",
    )
    config = write_config(
        tmp_path, page=False, extra=f'\n[[sources]]\nname = "appdb"\nkind = "database"\nurl = "{postgres_source_url}"\n'
    )
    server = make_server("data", BACKUPS_CONFIG=str(config)).start()
    users_then = rows("users")
    point = (await create_and_wait(server, "then"))["restorePoint"]["id"]
    sql("UPDATE users SET name = 'bobby' WHERE id = 2", "DELETE FROM users WHERE id = 3")
    sql("INSERT INTO orders (user_id, item) VALUES (1, 'chair')")
    orders_now = rows("orders")

    items = [{"source": "appdb", "paths": ["users"]}]
    payload = (await execute(server, APPLY, id=point, confirm=point, items=items))["applyRestorePoint"]
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    assert rows("users") == users_then and rows("orders") == orders_now

    sql("INSERT INTO users (id, name) VALUES (4, 'dee')", "INSERT INTO orders (user_id, item) VALUES (4, 'sofa')")
    before = (rows("users"), rows("orders"))
    payload = (await execute(server, APPLY, id=point, confirm=point, items=items))["applyRestorePoint"]
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "APPLY_FAILED", final
    assert "orders_user_id_fkey" in final["error"]["message"], final
    assert (rows("users"), rows("orders")) == before
