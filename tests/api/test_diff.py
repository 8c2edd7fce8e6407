"""compareRestorePoints and applyPreview through the real server: which items changed, how
(JSON paths, unified diffs, rows), paging and filters, and every bad input refused clearly
with nothing changed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from tests.support.api import create_and_wait, execute, execute_errors, update_settings
from tests.support.apply import blob_path, module_bytes, modules, plant_restore_point, restore_points, system
from tests.support.folder_source import folder_server, tree_state
from tests.support.in_process import InProcessServer

CHANGE = """source path kind truncated textDiff
    before { path sha256 sizeBytes mode kind } after { path sha256 sizeBytes mode kind }
    settingsChanges { path before after beforePresent afterPresent }"""
SUMMARY = "summary { added removed changed unchanged addedBytes removedBytes changedBytes }"
COMPARE = f"""query($from: ID!, $to: ID!, $first: Int, $after: String, $source: String, $kind: [ChangeKind!]) {{
    compareRestorePoints(from: $from, to: $to) {{ {SUMMARY} fingerprint
        changes(first: $first, after: $after, source: $source, kind: $kind) {{
            totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {CHANGE} }} }} }} }} }}"""
PREVIEW = f"""query($id: ID!, $sources: [String!], $first: Int, $after: String) {{
    applyPreview(restorePointId: $id, sources: $sources) {{ {SUMMARY} fingerprint
        changes(first: $first, after: $after) {{
            totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CHANGE} }} }} }} }}"""
SUMMARY_ONLY = "query($id: ID!) { applyPreview(restorePointId: $id) { summary { changed } fingerprint } }"
DELETE = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message } } }"


async def compare(server: InProcessServer, a: str, b: str, **variables: Any) -> dict[str, Any]:
    return (await execute(server, COMPARE, **{"from": a, "to": b, "first": 100, **variables}))["compareRestorePoints"]


async def preview(server: InProcessServer, point_id: str, **variables: Any) -> dict[str, Any]:
    return (await execute(server, PREVIEW, id=point_id, first=100, **variables))["applyPreview"]


def by_path(changes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["source"], c["path"]): c for c in changes}


async def change_everything(site: Path, database: Path, server: InProcessServer) -> None:
    """One change of each kind in each source."""
    await update_settings(server, "audio", {"masterVolume": -3.5, "newKey": {"deep": [1, 2]}})
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\nname: Hall A\n")  # changed text
    (site / "media" / "logo.bin").write_bytes(bytes(range(255, -1, -1)) * 400)  # changed binary
    (site / "notes.txt").write_text("added\n")  # added
    (site / "conf.d" / "Ünïcödé ☃.json").unlink()  # removed
    (site / "start.sh").chmod(0o700)  # mode only
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE users SET name = 'bobby' WHERE id = 2")
        conn.execute("DELETE FROM users WHERE id = 3")
        conn.execute("INSERT INTO users VALUES (4, 'dee')")


async def test_compare_lists_each_change_with_its_content(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    audio_before = (await modules(server))["audio"]
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    await change_everything(site, database, server)
    b = (await create_and_wait(server, "b"))["restorePoint"]["id"]

    diff = await compare(server, a, b)
    assert diff["fingerprint"] is None
    changes = by_path([edge["node"] for edge in diff["changes"]["edges"]])
    kinds = {key: c["kind"] for key, c in changes.items()}
    assert kinds == {
        ("settings", "audio.json"): "CHANGED",
        ("site", "conf.d/main.yaml"): "CHANGED",
        ("site", "media/logo.bin"): "CHANGED",
        ("site", "notes.txt"): "ADDED",
        ("site", "conf.d/Ünïcödé ☃.json"): "REMOVED",
        ("site", "start.sh"): "CHANGED",
        ("appdb", "users.jsonl"): "CHANGED",
    }
    summary = diff["summary"]
    assert (summary["added"], summary["removed"], summary["changed"]) == (1, 1, 5)
    entries_a = await execute(server, "query($id: ID!) { restorePoint(id: $id) { itemCount } }", id=a)
    assert summary["unchanged"] == entries_a["restorePoint"]["itemCount"] - 6  # all but the changed and removed
    assert summary["addedBytes"] == len("added\n")
    assert summary["removedBytes"] == len('{"snow": "man"}\n')
    # Source order (as configured), then path order.
    order = [(c["source"], c["path"]) for c in (edge["node"] for edge in diff["changes"]["edges"])]
    assert order == sorted(order, key=lambda k: (["settings", "site", "appdb"].index(k[0]), k[1]))

    audio = changes[("settings", "audio.json")]
    settings = {s["path"]: s for s in audio["settingsChanges"]}
    assert settings["/masterVolume"]["before"] == audio_before["masterVolume"]
    assert settings["/masterVolume"]["after"] == -3.5
    assert settings["/newKey"] == {
        "path": "/newKey",
        "before": None,
        "after": {"deep": [1, 2]},
        "beforePresent": False,
        "afterPresent": True,
    }
    assert len(settings) == 2 and audio["textDiff"] is None and audio["truncated"] is False

    text = changes[("site", "conf.d/main.yaml")]
    assert text["textDiff"].splitlines() == [
        "--- a/site/conf.d/main.yaml",
        "+++ b/site/conf.d/main.yaml",
        "@@ -1,2 +1,2 @@",
        "-listen: 80",
        "+listen: 8080",
        " name: Hall A",
    ]
    assert text["before"]["sha256"] != text["after"]["sha256"] and text["truncated"] is False

    binary = changes[("site", "media/logo.bin")]
    assert binary["textDiff"] is None and binary["settingsChanges"] is None
    assert binary["before"]["sizeBytes"] == binary["after"]["sizeBytes"] == 256 * 400

    mode = changes[("site", "start.sh")]
    assert (mode["before"]["mode"], mode["after"]["mode"]) == (0o750, 0o700)
    assert mode["before"]["sha256"] == mode["after"]["sha256"] and mode["textDiff"] is None

    added = changes[("site", "notes.txt")]
    assert added["before"] is None and added["after"]["sizeBytes"] == 6
    assert "+added" in added["textDiff"].splitlines()
    removed = changes[("site", "conf.d/Ünïcödé ☃.json")]
    assert removed["after"] is None and '-{"snow": "man"}' in removed["textDiff"].splitlines()

    rows = [line for line in changes[("appdb", "users.jsonl")]["textDiff"].splitlines() if line[:1] in "+-"]
    rows = [line for line in rows if not line.startswith(("---", "+++"))]
    assert sorted(rows) == sorted(
        [
            '-{"id": 2, "name": "bob"}',
            '-{"id": 3, "name": "cy"}',
            '+{"id": 2, "name": "bobby"}',
            '+{"id": 4, "name": "dee"}',
        ]
    ), rows

    # The other way round: added and removed swap, the diff is reversed.
    back = await compare(server, b, a)
    assert (back["summary"]["added"], back["summary"]["removed"], back["summary"]["changed"]) == (1, 1, 5)
    back_changes = by_path([edge["node"] for edge in back["changes"]["edges"]])
    assert back_changes[("site", "notes.txt")]["kind"] == "REMOVED"
    assert "+listen: 80" in back_changes[("site", "conf.d/main.yaml")]["textDiff"].splitlines()


async def test_changes_page_by_cursor_and_filter_by_source_and_kind(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    for number in range(7):
        (site / f"file-{number}.txt").write_text(f"{number}\n")
    await change_everything(site, database, server)
    b = (await create_and_wait(server, "b"))["restorePoint"]["id"]
    everything = [edge["node"]["path"] for edge in (await compare(server, a, b))["changes"]["edges"]]
    assert len(everything) == 14

    seen: list[str] = []
    after = None
    for _ in range(10):
        page = (await compare(server, a, b, first=3, after=after))["changes"]
        seen += [edge["node"]["path"] for edge in page["edges"]]
        assert page["totalCount"] == 14
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == everything  # no gaps, no repeats

    site_added = (await compare(server, a, b, source="site", kind=["ADDED"]))["changes"]
    paths = [edge["node"]["path"] for edge in site_added["edges"]]
    assert paths == [
        "file-0.txt",
        "file-1.txt",
        "file-2.txt",
        "file-3.txt",
        "file-4.txt",
        "file-5.txt",
        "file-6.txt",
        "notes.txt",
    ]
    assert site_added["totalCount"] == 8
    removed_or_changed = (await compare(server, a, b, kind=["REMOVED", "CHANGED"]))["changes"]
    assert {edge["node"]["kind"] for edge in removed_or_changed["edges"]} == {"REMOVED", "CHANGED"}
    assert removed_or_changed["totalCount"] == 6
    # A filtered page continues after a cursor too.
    first_two = (await compare(server, a, b, source="site", kind=["ADDED"], first=2))["changes"]
    rest = await compare(server, a, b, source="site", kind=["ADDED"], after=first_two["pageInfo"]["endCursor"])
    assert [e["node"]["path"] for e in first_two["edges"] + rest["changes"]["edges"]] == paths

    errors = await execute_errors(server, COMPARE, **{"from": a, "to": b, "after": "not-a-cursor"})
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT" and "cursor" in errors[0]["message"]
    errors = await execute_errors(server, COMPARE, **{"from": a, "to": b, "first": 0})
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"


async def test_a_restore_point_compared_with_itself_is_an_empty_diff(make_server, tmp_path: Path) -> None:
    server, _, _ = folder_server(make_server, tmp_path, database=True)
    a = (await create_and_wait(server, "a"))["restorePoint"]
    diff = await compare(server, a["id"], a["id"])
    assert diff["changes"] == {"totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}
    count = await execute(server, "query($id: ID!) { restorePoint(id: $id) { itemCount } }", id=a["id"])
    assert diff["summary"]["unchanged"] == count["restorePoint"]["itemCount"] > 0
    assert (diff["summary"]["added"], diff["summary"]["removed"], diff["summary"]["changed"]) == (0, 0, 0)


async def test_unknown_ids_are_not_found(make_server, tmp_path: Path) -> None:
    server, _, _ = folder_server(make_server, tmp_path, database=True)
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    for query, variables in (
        (COMPARE, {"from": a, "to": "rp_doesnotexist"}),
        (COMPARE, {"from": "rp_doesnotexist", "to": a}),
        (COMPARE, {"from": "garbage", "to": a}),
        (PREVIEW, {"id": "rp_doesnotexist"}),
    ):
        errors = await execute_errors(server, query, **variables)
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", errors
        assert "no restore point" in errors[0]["message"]
    # The restore point refused nothing: it can still be deleted (no hold was left behind).
    assert (await execute(server, DELETE, id=a))["deleteRestorePoint"] == {"deletedId": a, "userErrors": []}


async def test_preview_compares_now_with_the_restore_point(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    fresh = await preview(server, a)
    assert fresh["summary"]["changed"] == fresh["summary"]["added"] == fresh["summary"]["removed"] == 0
    assert fresh["fingerprint"] == (await system(server))["configurationFingerprint"]

    await change_everything(site, database, server)
    state = (tree_state(site), await modules(server), await restore_points(server))
    diff = await preview(server, a)
    assert diff["fingerprint"] == (await system(server))["configurationFingerprint"] != fresh["fingerprint"]
    changes = by_path(diff["changes"]["nodes"])
    # From now to the restore point: the file added since would be removed, and so on.
    assert changes[("site", "notes.txt")]["kind"] == "REMOVED"
    assert changes[("site", "conf.d/Ünïcödé ☃.json")]["kind"] == "ADDED"
    assert changes[("site", "conf.d/main.yaml")]["textDiff"].splitlines()[3:5] == ["-listen: 8080", "+listen: 80"]
    volume = {s["path"]: s for s in changes[("settings", "audio.json")]["settingsChanges"]}["/masterVolume"]
    assert volume["before"] == -3.5
    assert (diff["summary"]["added"], diff["summary"]["removed"], diff["summary"]["changed"]) == (1, 1, 5)
    # A preview changes nothing.
    assert (tree_state(site), await modules(server), await restore_points(server)) == state

    only_site = await preview(server, a, sources=["site"])
    assert {c["source"] for c in only_site["changes"]["nodes"]} == {"site"}
    assert only_site["summary"]["changed"] == 3 and only_site["fingerprint"] == diff["fingerprint"]

    errors = await execute_errors(server, PREVIEW, id=a, sources=["site", "nosuch"])
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT" and "'nosuch'" in errors[0]["message"]


async def test_a_damaged_blob_is_named_and_nothing_changes(make_server, tmp_path: Path) -> None:
    # Loose blobs, as an earlier release stored them (a damaged pack range: test_packs.py).
    server, site, database = folder_server(make_server, tmp_path, database=True, BACKUPS_PACK_SMALL_BLOBS="false")
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    await change_everything(site, database, server)
    b = (await create_and_wait(server, "b"))["restorePoint"]["id"]
    main = by_path([e["node"] for e in (await compare(server, a, b))["changes"]["edges"]])[("site", "conf.d/main.yaml")]
    blob = blob_path(server, main["before"]["sha256"])
    blob.write_bytes(blob.read_bytes().replace(b"80", b"81"))
    state = (tree_state(site), await modules(server), await restore_points(server))

    errors = await execute_errors(server, COMPARE, **{"from": a, "to": b, "first": 100})
    assert errors[0]["extensions"]["code"] == "CONTENT_DAMAGED", errors
    assert "site/conf.d/main.yaml" in errors[0]["message"] and "damaged" in errors[0]["message"]
    # The summary alone reads no content: it is still there.
    summary = await execute(
        server, "query($a: ID!, $b: ID!) { compareRestorePoints(from: $a, to: $b) { summary { changed } } }", a=a, b=b
    )
    assert summary["compareRestorePoints"]["summary"]["changed"] == 5
    errors = await execute_errors(server, PREVIEW, id=a)
    assert errors[0]["extensions"]["code"] == "CONTENT_DAMAGED" and "site/conf.d/main.yaml" in errors[0]["message"]
    assert (tree_state(site), await modules(server), await restore_points(server)) == state
    assert blob.read_bytes().count(b"81") == 1  # the damaged blob is left for a person to look at

    blob.unlink()
    errors = await execute_errors(server, PREVIEW, id=a)
    assert errors[0]["extensions"]["code"] == "CONTENT_DAMAGED" and "missing" in errors[0]["message"]


async def test_binary_and_non_utf8_files_show_sizes_and_hashes_only(make_server, tmp_path: Path) -> None:
    server, site, _ = folder_server(make_server, tmp_path, database=True)
    (site / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    (site / "zeros.bin").write_bytes(b"\0" * 100)
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    (site / "latin1.txt").write_bytes("crème\n".encode("latin-1"))
    (site / "zeros.bin").write_bytes(b"\0" * 99 + b"\1")
    diff = await preview(server, a)
    changes = by_path(diff["changes"]["nodes"])
    for path in ("latin1.txt", "zeros.bin"):
        change = changes[("site", path)]
        assert change["kind"] == "CHANGED" and change["textDiff"] is None and change["settingsChanges"] is None
        assert change["truncated"] is False
        assert change["before"]["sha256"] != change["after"]["sha256"]
    assert changes[("site", "latin1.txt")]["before"]["sizeBytes"] == len("crème\n".encode("latin-1"))


async def test_a_large_text_file_is_cut_and_flagged(make_server, tmp_path: Path) -> None:
    server, site, _ = folder_server(make_server, tmp_path, database=True, BACKUPS_DIFF_TEXT_LIMIT_BYTES="4096")
    lines = [f"line {number}\n" for number in range(20_000)]  # ~200 KB, 50 times the limit
    (site / "big.txt").write_text("".join(lines))
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    lines[3] = "line three, changed\n"  # inside the limit: shown
    lines[19_000] = "changed far beyond the limit\n"  # beyond it: not shown, but flagged
    (site / "big.txt").write_text("".join(lines))
    big = by_path((await preview(server, a))["changes"]["nodes"])[("site", "big.txt")]
    assert big["truncated"] is True
    assert "-line three, changed" in big["textDiff"].splitlines() and "+line 3" in big["textDiff"].splitlines()
    assert "far beyond" not in big["textDiff"] and len(big["textDiff"]) < 4096

    # A diff longer than BACKUPS_DIFF_MAX_BYTES is cut at whole lines, and flagged.
    small_diff, _, _ = folder_server(
        make_server, tmp_path / "two", "data2", database=True, BACKUPS_DIFF_MAX_BYTES="300"
    )
    site_two = tmp_path / "two" / "site"
    (site_two / "list.txt").write_text("".join(f"{n}\n" for n in range(100)))
    b = (await create_and_wait(small_diff, "b"))["restorePoint"]["id"]
    (site_two / "list.txt").write_text("".join(f"{n} changed\n" for n in range(100)))
    cut = by_path((await preview(small_diff, b))["changes"]["nodes"])[("site", "list.txt")]
    assert cut["truncated"] is True and len(cut["textDiff"].encode()) <= 300 and cut["textDiff"].endswith("\n")


async def test_an_unreachable_source_is_named(make_server, tmp_path: Path) -> None:
    server, site, _ = folder_server(make_server, tmp_path, database=True)
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    site.rename(tmp_path / "elsewhere")
    errors = await execute_errors(server, PREVIEW, id=a)
    assert errors[0]["extensions"]["code"] == "SOURCE_UNAVAILABLE", errors
    assert "'site'" in errors[0]["message"]
    # Comparing restore points reads no source: it still works.
    assert (await compare(server, a, a))["summary"]["changed"] == 0
    (tmp_path / "elsewhere").rename(site)
    assert (await preview(server, a))["summary"]["changed"] == 0


async def test_a_changed_table_schema_is_refused_in_the_preview(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN email TEXT")
    state = (tree_state(site), await restore_points(server))
    errors = await execute_errors(server, PREVIEW, id=a)
    assert errors[0]["extensions"]["code"] == "SCHEMA_MISMATCH", errors
    assert "'appdb'" in errors[0]["message"] and "users" in errors[0]["message"]
    # Leaving the database out previews the rest.
    rest = await preview(server, a, sources=["settings", "site"])
    assert rest["summary"]["changed"] == 0
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY)")
    errors = await execute_errors(server, PREVIEW, id=a)
    assert errors[0]["extensions"]["code"] == "SCHEMA_MISMATCH" and "'extra'" in errors[0]["message"]
    assert (tree_state(site), await restore_points(server)) == state


async def test_a_delete_during_a_diff_is_refused_busy(make_server, tmp_path: Path) -> None:
    """The diff holds its restore points while it reads them: a delete meanwhile gets BUSY
    (or, if it came first, the diff gets NOT_FOUND); never a diff of content deleted under it.

    The `from` side is big and read first, so a delete of `to` that got through while it is
    read would remove the blob the diff opens next (CONTENT_DAMAGED: missing)."""
    server, site, _ = folder_server(make_server, tmp_path, database=True, BACKUPS_DIFF_TEXT_LIMIT_BYTES="4096")
    outcomes: list[str] = []
    for round_ in range(12):
        body = "".join(f"round {round_} line {n}\n" for n in range(1_000_000)).encode()  # ~20 MB, unique
        (site / "big.txt").write_bytes(body)
        a = (await create_and_wait(server, "a"))["restorePoint"]["id"]
        (site / "big.txt").write_bytes(f"round {round_}: small now\n".encode())
        b = (await create_and_wait(server, "b"))["restorePoint"]["id"]
        reader = asyncio.create_task(compare(server, a, b))
        await asyncio.sleep(0.01 * (round_ % 6))
        deleted = (await execute(server, DELETE, id=b))["deleteRestorePoint"]
        try:
            diff = await reader
        except Exception as error:  # the delete came before a read began: a clean NOT_FOUND
            assert deleted["userErrors"] == [] and "no restore point" in str(error), (deleted, error)
            outcomes.append("not found")
            continue
        big = by_path([e["node"] for e in diff["changes"]["edges"]])[("site", "big.txt")]
        assert f"+round {round_}: small now" in big["textDiff"].splitlines() and big["truncated"] is True
        if deleted["userErrors"]:
            assert deleted["userErrors"][0]["code"] == "BUSY", deleted
            outcomes.append("busy")
            assert (await execute(server, DELETE, id=b))["deleteRestorePoint"]["userErrors"] == []
        else:
            outcomes.append("diff first")
        assert (await execute(server, DELETE, id=a))["deleteRestorePoint"]["userErrors"] == []
    assert "busy" in outcomes, outcomes


async def test_a_restore_point_of_a_source_not_configured_is_refused_as_the_apply_would(
    make_server, tmp_path: Path
) -> None:
    server, _, _ = folder_server(make_server, tmp_path, database=True)
    settings = await modules(server)
    planted = plant_restore_point(
        server,
        {("settings", "audio.json"): module_bytes(settings["audio"]), ("gone", "a.txt"): b"from elsewhere\n"},
    )
    errors = await execute_errors(server, PREVIEW, id=planted)
    assert errors[0]["extensions"]["code"] == "UNKNOWN_SOURCE" and "'gone'" in errors[0]["message"]
    # Naming configured sources previews those, as a partial apply would apply them.
    partial = await preview(server, planted, sources=["settings"])
    assert {c["path"] for c in partial["changes"]["nodes"]} == {f"{name}.json" for name in settings} - {"audio.json"}
    assert {c["kind"] for c in partial["changes"]["nodes"]} == {"REMOVED"}
