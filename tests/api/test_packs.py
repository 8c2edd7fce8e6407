"""Pack files for small blobs, through the real server: what is stored where, read back byte
for byte by export, apply and diff; a pack torn by SIGKILL; a damaged pack range; a pack
rewritten by garbage collection, also while a capture reuses its blobs; and a data folder an
earlier release wrote (loose blobs only), read and extended with no step by hand."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.api import create_and_wait, execute, execute_errors, log_lines, update_settings, wait_for_operation
from tests.support.apply import modules, restore_points, start_apply
from tests.support.folder_source import make_tree, tree_state
from tests.support.local_copies import export_members
from tests.support.server_process import TEST_DATABASE_URL, ServerCommon, ServerProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ENTRIES = "query($id: ID!) { restorePoint(id: $id) { id entries { source path sha256 sizeBytes kind } } }"
EXPORT = "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } userErrors { code } } }"
DELETE = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message } } }"
COMPARE = """query($a: ID!, $b: ID!) { compareRestorePoints(from: $a, to: $b) {
    changes(first: 100) { nodes { source path kind textDiff } } } }"""
PREVIEW = "query($id: ID!) { applyPreview(restorePointId: $id) { changes(first: 100) { nodes { path textDiff } } } }"


# -- what is on disk, and in the database's index ------------------------------------------


def packs_dir(server: ServerCommon) -> Path:
    return server.data_dir / "blobs" / "packs"


def pack_files(server: ServerCommon) -> dict[str, int]:
    """Pack id -> file size, for every pack file in the data folder."""
    return {p.name.removesuffix(".pack"): p.stat().st_size for p in packs_dir(server).glob("*.pack")}


def loose_blobs(server: ServerCommon) -> set[str]:
    return {p.parent.name + p.name for p in (server.data_dir / "blobs").glob("??/*") if p.is_file()}


def index_rows(server: ServerCommon) -> tuple[dict[str, int], dict[str, tuple[str, int, int]]]:
    """(pack id -> size, digest -> (pack, start, size)) as the database holds them."""
    assert server.database is not None
    engine = create_engine(server.database.url)
    try:
        with engine.connect() as connection:
            packs = {pack: size for pack, size in connection.execute(text("SELECT id, size_bytes FROM pack"))}
            rows = connection.execute(text("SELECT sha256, pack_id, start_byte, size_bytes FROM packed_blob"))
            return packs, {digest: (pack, start, size) for digest, pack, start, size in rows}
    finally:
        engine.dispose()


def check_index(server: ServerCommon) -> dict[str, tuple[str, int, int]]:
    """Every row names a pack file that holds the blob's bytes at its range; every pack file
    has a row (nothing torn or left over); returns the rows."""
    packs, rows = index_rows(server)
    assert set(pack_files(server)) == set(packs) == {pack for pack, _, _ in rows.values()}
    for digest, (pack, start, size) in rows.items():
        with (packs_dir(server) / f"{pack}.pack").open("rb") as file:
            file.seek(start)
            assert hashlib.sha256(file.read(size)).hexdigest() == digest
    return rows


async def entries_of(server: ServerCommon, point_id: str) -> list[dict[str, Any]]:
    return (await execute(server, ENTRIES, id=point_id))["restorePoint"]["entries"]


def tree_files(site: Path) -> dict[str, bytes]:
    """The folder as an export holds it: each file's bytes, a link's target."""
    return {
        f"site/{p.relative_to(site)}": os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
        for p in site.rglob("*")
        if p.is_symlink() or p.is_file()
    }


def site_config(tmp_path: Path) -> tuple[Path, Path]:
    site = tmp_path / "site"
    make_tree(site)
    config = tmp_path / "backups.toml"
    config.write_text(
        f'[[sources]]\nname = "settings"\nkind = "settings"\n\n[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n'
    )
    return site, config


def many_files(site: Path, count: int, tag: str) -> None:
    folder = site / "many"
    folder.mkdir(exist_ok=True)
    for number in range(count):
        (folder / f"f{number:03}.txt").write_bytes(f"{tag} {number}\n".encode() * 400)


# -- 1. stored in packs, read back byte-exact -------------------------------------------------


async def test_small_files_and_settings_go_into_packs_and_read_back_exact(make_server, tmp_path: Path) -> None:
    site, config = site_config(tmp_path)
    (site / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # over 1 MiB: stays a loose blob
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    await update_settings(server, "audio", {"masterVolume": -3.5, "zones": ["hall"]})
    audio = (await modules(server))["audio"]
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]

    entries = await entries_of(server, a)
    digests = {e["sha256"] for e in entries if e["sha256"]}
    big = next(e["sha256"] for e in entries if e["path"] == "big.bin")
    rows = check_index(server)
    assert loose_blobs(server) == {big}, "only the big blob is a file of its own"
    assert set(rows) == digests - {big}, "every small blob, settings modules too, is in a pack"
    assert any(e["source"] == "settings" and e["sha256"] in rows for e in entries)
    assert len(pack_files(server)) == 1

    members = await export_members(server, a)
    assert {n: v for n, v in members.items() if n.startswith("site/")} == tree_files(site)
    settings_members = {n: v for n, v in members.items() if n.startswith("settings/")}
    assert b'"masterVolume": -3.5' in settings_members["settings/audio.json"]

    before = tree_state(site)
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\nname: Hall A\n")
    (site / "media" / "logo.bin").write_bytes(b"a newer logo")
    b = (await create_and_wait(server, "b"))["restorePoint"]["id"]
    assert len(pack_files(server)) == 2, "a restore point's new blobs go into a new pack: sealed ones never change"
    changes = {
        c["path"]: c for c in (await execute(server, COMPARE, a=a, b=b))["compareRestorePoints"]["changes"]["nodes"]
    }
    assert changes["conf.d/main.yaml"]["textDiff"].splitlines()[3:5] == ["-listen: 80", "+listen: 8080"]

    await update_settings(server, "audio", {"masterVolume": 1.0})
    op = await start_apply(server, a, safety=False)
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "SUCCEEDED", final
    assert tree_state(site) == before, "the folder is back byte for byte, from packed blobs"
    assert (await modules(server))["audio"] == audio
    check_index(server)


async def test_a_pack_removed_by_hand_is_not_trusted_and_its_blobs_are_stored_again(
    make_server, tmp_path: Path
) -> None:
    """As a loose blob removed by hand is stored again rather than trusted: the next capture
    of the same content sees the pack is gone (a stat), reads the files and stores them."""
    site, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    server.clock.advance(2.2)  # past the hash cache's racy window: the second capture reuses digests
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    assert pack_files(server)
    for pack in packs_dir(server).glob("*.pack"):
        pack.unlink()

    final = await create_and_wait(server, "b")
    log = await log_lines(server, final["id"])
    assert any("blobs were missing: stored again" in line for line in log), log
    b = final["restorePoint"]["id"]
    assert {e["sha256"] for e in await entries_of(server, b)} == {e["sha256"] for e in await entries_of(server, a)}
    for point in (b, a):  # the same content: the older restore point is whole again too
        members = await export_members(server, point)
        assert {n: v for n, v in members.items() if n.startswith("site/")} == tree_files(site)


# -- 2. SIGKILL while a pack is being written --------------------------------------------------


async def test_a_pack_torn_by_sigkill_is_removed_and_no_restore_point_refers_to_it(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    site, config = site_config(tmp_path)
    proc = make_server_process(BACKUPS_CONFIG=str(config)).start()
    old = (await create_and_wait(proc, "old"))["restorePoint"]["id"]
    old_members = await export_members(proc, old)
    kept = pack_files(proc)
    await asyncio.to_thread(proc.stop)

    many_files(site, 12, "new")
    proc.env_overrides["BACKUPS_TEST_PACK_PAUSE_AFTER_APPENDS"] = "5"
    await asyncio.to_thread(proc.start)
    started = await execute(proc, "mutation { createRestorePoint { operation { id } } }")
    op_id = started["createRestorePoint"]["operation"]["id"]

    async def paused() -> bool:
        return "test pause at pack-append" in proc.log_path.read_text(errors="replace")

    deadline = asyncio.get_running_loop().time() + 60
    while not await paused():
        assert asyncio.get_running_loop().time() < deadline, proc.log_path.read_text()[-2000:]
        await asyncio.sleep(0.05)
    (torn,) = set(pack_files(proc)) - set(kept)
    assert pack_files(proc)[torn] > 8, "blobs were appended to it"
    await asyncio.to_thread(proc.kill)

    del proc.env_overrides["BACKUPS_TEST_PACK_PAUSE_AFTER_APPENDS"]
    await asyncio.to_thread(proc.start)
    assert [p["id"] for p in await restore_points(proc)] == [old], "no restore point refers to the torn pack"
    assert torn not in pack_files(proc), "the start-up sweep removed it"
    assert set(pack_files(proc)) == set(kept)
    check_index(proc)
    assert (await execute(proc, "query($id: ID!) { operation(id: $id) { status } }", id=op_id))["operation"][
        "status"
    ] != "SUCCEEDED"
    assert await export_members(proc, old) == old_members, "the older restore point exports whole"
    again = (await create_and_wait(proc, "again"))["restorePoint"]["id"]
    assert {n: v for n, v in (await export_members(proc, again)).items() if n.startswith("site/")} == tree_files(site)
    check_index(proc)


# -- 3. a damaged pack range --------------------------------------------------------------------


async def test_a_damaged_pack_range_is_refused_naming_the_entry_and_nothing_changes(
    make_server, tmp_path: Path
) -> None:
    site, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    victim = next(e for e in await entries_of(server, a) if e["path"] == "conf.d/main.yaml")
    pack, start, size = index_rows(server)[1][victim["sha256"]]
    with (packs_dir(server) / f"{pack}.pack").open("r+b") as file:
        file.seek(start + 3)
        byte = file.read(1)
        file.seek(start + 3)
        file.write(bytes([byte[0] ^ 0x01]))  # one bit, inside this entry's range only
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    await update_settings(server, "audio", {"masterVolume": 6.0})
    state = (tree_state(site), await modules(server), await restore_points(server))

    op = await start_apply(server, a, safety=True)
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "CONTENT_DAMAGED", final
    assert "conf.d/main.yaml" in final["error"]["message"] and "nothing was changed" in final["error"]["message"]
    assert (tree_state(site), await modules(server), await restore_points(server)) == state

    errors = await execute_errors(server, PREVIEW, id=a)
    assert errors[0]["extensions"]["code"] == "CONTENT_DAMAGED" and "site/conf.d/main.yaml" in errors[0]["message"]
    started = (await execute(server, EXPORT, id=a))["exportRestorePoint"]
    failed = await wait_for_operation(server, started["operation"]["id"])
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "CONTENT_DAMAGED", failed
    assert not list((server.data_dir / "local-copies").glob("*.zip")), "no copy of damaged content"
    assert (tree_state(site), await modules(server), await restore_points(server)) == state


# -- 4. garbage collection rewrites a mostly dead pack ------------------------------------------


async def two_points_sharing_little(server: ServerCommon, site: Path) -> tuple[str, str, str]:
    """Restore points a and b, where b keeps 2 of a's 20 files: (a, b, a's pack)."""
    many_files(site, 20, "first")
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    (first_pack,) = pack_files(server)
    for number in range(2, 20):
        (site / "many" / f"f{number:03}.txt").write_bytes(f"second {number}\n".encode() * 400)
    b = (await create_and_wait(server, "b"))["restorePoint"]["id"]
    return a, b, first_pack


async def test_deleting_restore_points_rewrites_a_mostly_dead_pack(make_server, tmp_path: Path) -> None:
    site, config = site_config(tmp_path)
    (site / "media" / "logo.bin").unlink()  # of the tree's small files, only those of "many" matter here
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a, b, first_pack = await two_points_sharing_little(server, site)
    old_size = pack_files(server)[first_pack]
    b_members = await export_members(server, b)

    assert (await execute(server, DELETE, id=a))["deleteRestorePoint"]["userErrors"] == []
    packs = pack_files(server)
    assert first_pack not in packs, "the mostly dead pack was replaced"
    rows = check_index(server)
    kept = {e["sha256"] for e in await entries_of(server, b) if e["path"] in ("many/f000.txt", "many/f001.txt")}
    (rewritten,) = {rows[digest][0] for digest in kept}
    assert packs[rewritten] < old_size / 4, "it holds only what is live"
    assert await export_members(server, b) == b_members
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    assert await export_members(server, b) == b_members, "the rewritten index survives a restart"


async def test_a_capture_reusing_blobs_of_a_pack_being_rewritten_is_complete(make_server, tmp_path: Path) -> None:
    site, config = site_config(tmp_path)
    (site / "media" / "logo.bin").unlink()
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_TEST_PACK_REWRITE_PAUSE_SECONDS="3").start()
    a, b, first_pack = await two_points_sharing_little(server, site)
    # Back to a's content for one file (a blob the delete frees, stored again) and one new one.
    (site / "many" / "f005.txt").write_bytes(b"first 5\n" * 400)
    (site / "many" / "new.txt").write_text("new\n")

    deleting = asyncio.create_task(execute(server, DELETE, id=a))
    deadline = asyncio.get_running_loop().time() + 30
    while set(pack_files(server)) - set(index_rows(server)[0]) == set():  # the rewrite's new pack
        assert asyncio.get_running_loop().time() < deadline and not deleting.done()
        await asyncio.sleep(0.02)
    assert first_pack in pack_files(server) and not deleting.done(), "the rewrite is under way"
    # Reuses f000/f001 (hash cache: pinned in the pack being rewritten) while it is rewritten.
    c = (await create_and_wait(server, "c"))["restorePoint"]["id"]
    assert (await deleting)["deleteRestorePoint"]["userErrors"] == []

    assert first_pack not in pack_files(server)
    rows = check_index(server)
    c_digests = {e["sha256"] for e in await entries_of(server, c) if e["sha256"]}
    assert c_digests <= set(rows) | loose_blobs(server), "every blob of c is indexed and there"
    members = await export_members(server, c)
    assert {n: v for n, v in members.items() if n.startswith("site/")} == tree_files(site)
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    assert await export_members(server, c) == members


async def test_a_blob_a_capture_pinned_before_the_collection_is_kept_through_the_rewrite(
    make_server, tmp_path: Path
) -> None:
    """The other order: the capture has stored (and pinned) a blob that the deleted restore
    point alone used before the collection runs, and records after the rewrite moved it."""
    site, config = site_config(tmp_path)
    (site / "media" / "logo.bin").unlink()
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a, b, first_pack = await two_points_sharing_little(server, site)
    back = b"first 5\n" * 400  # a's content again: a blob only a references
    (site / "many" / "f005.txt").write_bytes(back)
    await asyncio.to_thread(server.stop)
    server.env_overrides["BACKUPS_TEST_ENTRY_DELAY"] = "0.1"  # the capture lingers after storing
    await asyncio.to_thread(server.start)

    started = await execute(server, 'mutation { createRestorePoint(label: "c") { operation { id } } }')
    op_id = started["createRestorePoint"]["operation"]["id"]
    state = "query($id: ID!) { operation(id: $id) { status progress } }"
    deadline = asyncio.get_running_loop().time() + 30
    while (await execute(server, state, id=op_id))["operation"]["progress"] < 0.3:  # its content is stored
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert (await execute(server, DELETE, id=a))["deleteRestorePoint"]["userErrors"] == []
    assert first_pack not in pack_files(server), "rewritten while the capture still runs"
    assert (await execute(server, state, id=op_id))["operation"]["status"] == "RUNNING"
    final = await wait_for_operation(server, op_id)
    assert final["status"] == "SUCCEEDED", final

    rows = check_index(server)
    kept = hashlib.sha256(back).hexdigest()
    f000 = hashlib.sha256(b"first 0\n" * 400).hexdigest()
    assert rows[kept][0] == rows[f000][0], "kept by its pin, copied into the rewritten pack"
    members = await export_members(server, final["restorePoint"]["id"])
    assert {n: v for n, v in members.items() if n.startswith("site/")} == tree_files(site)


async def test_the_small_packs_of_many_captures_are_merged(make_server, tmp_path: Path) -> None:
    site, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    points = {}
    for number in range(9):  # each capture adds one small file: a pack of its own
        (site / f"note-{number}.txt").write_text(f"note {number}\n")
        point = (await create_and_wait(server, f"p{number}"))["restorePoint"]["id"]
        points[point] = tree_files(site)
    assert len(pack_files(server)) == 9
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)  # the start-up sweep merges them

    (merged,) = pack_files(server)
    check_index(server)
    for point, files in points.items():
        members = await export_members(server, point)
        assert {n: v for n, v in members.items() if n.startswith("site/")} == files


# -- 5. a data folder an earlier release wrote -------------------------------------------------


def previous_release_on_postgres(proc: ServerProcess) -> None:
    """On PostgreSQL: the fixture's rows, copied from its SQLite database into this server's
    fresh one at the previous release's schema (migration 0007); the server migrates the rest."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import MetaData, Table, insert, inspect, select

    from server.storage.db.database import MIGRATIONS, Database
    from server.storage.db.tables import metadata

    sqlite_file = proc.data_dir / "backups.db"
    target = create_engine(Database(proc.fresh_database().url).sync_url)
    source = create_engine(f"sqlite:///{sqlite_file}")
    try:
        with target.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "0007")
        schema = inspect(source)
        present = set(schema.get_table_names())
        with source.connect() as rows, target.begin() as connection:
            for table in metadata.sorted_tables:
                if table.name not in present:
                    continue
                # Only the columns the previous release had: later migrations add the others.
                columns = [table.c[c["name"]] for c in schema.get_columns(table.name) if c["name"] in table.c]
                if found := [dict(r._mapping) for r in rows.execute(select(*columns))]:
                    # Into the table as the previous release's schema has it (no later defaults).
                    connection.execute(insert(Table(table.name, MetaData(), autoload_with=connection)), found)
    finally:
        source.dispose()
        target.dispose()
    sqlite_file.unlink()  # nothing reads it by mistake


async def test_a_data_folder_of_the_previous_release_is_read_and_extended(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """tests/fixtures/previous-release.tar.gz: a data folder (SQLite, loose blobs only, at
    migration 0007) and its folder source, as the release before packs (7d447b4) left them
    with one restore point of the folder and the settings store; see tests/fixtures/README.md.
    On PostgreSQL, its database's rows are copied into a PostgreSQL database at 0007 first."""
    with tarfile.open(FIXTURES / "previous-release.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    data, site = tmp_path / "data", tmp_path / "site"
    config = tmp_path / "backups.toml"
    config.write_text(
        f'[[sources]]\nname = "settings"\nkind = "settings"\n\n[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n'
    )
    old_loose = loose_blobs(ServerProcess(data_dir=data))
    assert len(old_loose) == 11 and not (data / "blobs" / "packs").exists()
    proc = make_server_process(BACKUPS_CONFIG=str(config))  # data_dir: tmp_path / "data"
    assert proc.data_dir == data
    if TEST_DATABASE_URL is not None:
        previous_release_on_postgres(proc)
    proc.start()

    (old,) = await restore_points(proc)
    assert old["label"] == "made by the previous release"
    old_files = tree_files(site)
    members = await export_members(proc, old["id"])
    assert {n: v for n, v in members.items() if n.startswith("site/")} == old_files
    assert b'"masterVolume": -2' in members["settings/audio.json"]

    (site / "notes.txt").write_text("written after the upgrade\n")
    (site / "hello.txt").write_text("changed after the upgrade\n")
    new = (await create_and_wait(proc, "after the upgrade"))["restorePoint"]["id"]
    rows = check_index(proc)
    assert hashlib.sha256(b"written after the upgrade\n").hexdigest() in rows, "new content goes into packs"
    new_files = tree_files(site)
    assert {n: v for n, v in (await export_members(proc, new)).items() if n.startswith("site/")} == new_files

    op = await start_apply(proc, old["id"], safety=False)
    assert (await wait_for_operation(proc, op["id"]))["status"] == "SUCCEEDED"
    assert tree_files(site) == old_files, "applied from loose blobs"

    assert (await execute(proc, DELETE, id=old["id"]))["deleteRestorePoint"]["userErrors"] == []
    new_digests = {e["sha256"] for e in await entries_of(proc, new) if e["sha256"]}
    assert loose_blobs(proc) == old_loose & new_digests, "the loose blobs only the old one used are freed"
    assert loose_blobs(proc) < old_loose
    assert {n: v for n, v in (await export_members(proc, new)).items() if n.startswith("site/")} == new_files
    check_index(proc)
