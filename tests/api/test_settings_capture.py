"""Restore points of the settings store: each module's document is made once per stored text
and, once the store holds it, reused on its digest; a changed module is captured anew, a
blob gone from the store is stored again, and what is captured is always the module as
stored now."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from server.sources.settings.documents import module_document_bytes
from tests.support.api import create_and_wait, execute, log_lines, update_settings
from tests.support.in_process import InProcessServer

POINT = "query($id: ID!) { restorePoint(id: $id) { storedBytes entries { path sizeBytes sha256 } } }"
MODULES = "{ modules { name settings } }"


async def snapshot(server: InProcessServer, label: str) -> tuple[dict[str, Any], list[str]]:
    final = await create_and_wait(server, label)
    point = (await execute(server, POINT, id=final["restorePoint"]["id"]))["restorePoint"]
    log = await log_lines(server, final["id"])
    return point, log


async def expected_documents(server: InProcessServer) -> dict[str, bytes]:
    """Each module's document as the format says (sorted, indented JSON), from its settings now."""
    return {
        f"{m['name']}.json": module_document_bytes(m["settings"]) for m in (await execute(server, MODULES))["modules"]
    }


def digests(point: dict[str, Any]) -> dict[str, str]:
    return {entry["path"]: entry["sha256"] for entry in point["entries"]}


async def test_unchanged_modules_are_reused_and_a_changed_one_is_captured_anew(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server().start()
    first, first_log = await snapshot(server, "first")
    documents = await expected_documents(server)
    assert digests(first) == {path: hashlib.sha256(data).hexdigest() for path, data in documents.items()}
    assert first["storedBytes"] == sum(len(data) for data in documents.values())
    assert not any("reused without being read" in line for line in first_log)  # nothing stored yet to reuse

    again, again_log = await snapshot(server, "again")
    assert digests(again) == digests(first) and again["storedBytes"] == 0
    assert f"{len(documents)} unchanged items reused without being read again." in again_log

    assert (await update_settings(server, "audio", {"volume": 3, "ducking": {"enabled": True}}))["userErrors"] == []
    changed, changed_log = await snapshot(server, "changed")
    now = await expected_documents(server)
    assert json.loads(now["audio.json"])["volume"] == 3
    assert digests(changed) == {path: hashlib.sha256(data).hexdigest() for path, data in now.items()}
    assert digests(changed)["audio.json"] != digests(first)["audio.json"]
    assert changed["storedBytes"] == len(now["audio.json"])  # only the changed module is new
    assert f"{len(now) - 1} unchanged items reused without being read again." in changed_log


async def test_a_module_blob_gone_from_the_store_is_stored_again(
    make_server: Callable[..., InProcessServer],
) -> None:
    # Loose blobs: a blob file removed by hand (a packed blob is a range of a pack file).
    server = make_server(BACKUPS_PACK_SMALL_BLOBS="false").start()
    first, _ = await snapshot(server, "first")
    audio = digests(first)["audio.json"]
    blob = server.data_dir / "blobs" / audio[:2] / audio[2:]
    size = blob.stat().st_size
    blob.unlink()  # removed by hand: the digest the source remembers no longer proves anything

    again, log = await snapshot(server, "again")
    assert digests(again) == digests(first)
    assert again["storedBytes"] == size
    assert blob.is_file() and hashlib.sha256(blob.read_bytes()).hexdigest() == audio
    assert "The same manifest is stored already, but 1 of its blobs were missing: stored again." in log
