"""Helpers for the apply tests: start an apply, read the configuration, plant restore points."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from server.model.ids import new_id
from tests.support.api import OPERATION_FIELDS, execute, subscribe
from tests.support.server_process import ServerProcess

APPLY = f"""mutation($id: ID!, $confirm: String!, $safety: Boolean) {{
    applyRestorePoint(restorePointId: $id, confirm: $confirm, createSafetyRestorePoint: $safety) {{
        operation {{ {OPERATION_FIELDS} }} userErrors {{ code message field }} }} }}"""
OPERATION_WITH_LOG = f"""query($id: ID!) {{ operation(id: $id) {{ {OPERATION_FIELDS}
    safetyRestorePoint {{ id label note origin checksum }} log {{ sequence level message }} }} }}"""
LOG = "subscription($id: ID!, $after: Int) { operationLog(id: $id, afterSequence: $after) { sequence level message } }"
SYSTEM = "{ system { state serverVersion configurationFingerprint operation { id status } } }"


async def apply(
    server: ServerProcess, point_id: str, *, confirm: str | None = None, safety: bool | None = None
) -> dict[str, Any]:
    """Call applyRestorePoint; returns its payload (operation, userErrors)."""
    variables: dict[str, Any] = {"id": point_id, "confirm": point_id if confirm is None else confirm}
    if safety is not None:
        variables["safety"] = safety
    return (await execute(server, APPLY, **variables))["applyRestorePoint"]


async def start_apply(server: ServerProcess, point_id: str, **kwargs: Any) -> dict[str, Any]:
    payload = await apply(server, point_id, **kwargs)
    assert payload["userErrors"] == [], payload
    return payload["operation"]


async def modules(server: ServerProcess) -> dict[str, Any]:
    """The settings store as {module name: settings}."""
    data = await execute(server, "{ modules { name settings } }")
    return {m["name"]: m["settings"] for m in data["modules"]}


async def operation(server: ServerProcess, op_id: str) -> dict[str, Any]:
    return (await execute(server, OPERATION_WITH_LOG, id=op_id))["operation"]


async def restore_points(server: ServerProcess) -> list[dict[str, Any]]:
    data = await execute(server, "{ restorePoints(first: 100) { nodes { id origin label checksum } } }")
    return data["restorePoints"]["nodes"]


async def system(server: ServerProcess) -> dict[str, Any]:
    return (await execute(server, SYSTEM))["system"]


async def wait_for_log(server: ServerProcess, op_id: str, needle: str, timeout: float = 30) -> int:
    """Follow the operation's log until a line contains `needle`; returns its sequence."""

    async def follow() -> int:
        async for event in subscribe(server, LOG, id=op_id, after=0):
            if needle in event["operationLog"]["message"]:
                return event["operationLog"]["sequence"]
        raise AssertionError(f"the log ended without {needle!r}")

    return await asyncio.wait_for(follow(), timeout)


async def wait_for_pause(server: ServerProcess, op_id: str, timeout: float = 30) -> int:
    """Wait until the apply is held at its BACKUPS_TEST_PAUSE_AT step (shown in the stage once
    the log is stored); returns the sequence of its last log line."""

    async def follow() -> int:
        async for event in subscribe(
            server, "subscription($id: ID!) { operationProgress(id: $id) { stage done lastSequence } }", id=op_id
        ):
            state = event["operationProgress"]
            assert not state["done"], state
            if "Test pause" in (state["stage"] or ""):  # "Uploading to 'x': Test pause at ..." too
                return state["lastSequence"]
        raise AssertionError("the operation ended without pausing")

    return await asyncio.wait_for(follow(), timeout)


async def log_after(server: ServerProcess, op_id: str, after: int) -> list[dict[str, Any]]:
    """What a client reconnecting with operationLog(afterSequence) receives."""
    return [e["operationLog"] async for e in subscribe(server, LOG, id=op_id, after=after)]


def blob_path(server: ServerProcess, digest: str) -> Path:
    return server.data_dir / "blobs" / digest[:2] / digest[2:]


def module_bytes(settings: dict[str, Any]) -> bytes:
    """A module document as the settings source writes it."""
    return (json.dumps(settings, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def plant_restore_point(server: ServerProcess, files: dict[tuple[str, str], bytes], label: str = "planted") -> str:
    """Put a restore point straight into the server's content store and database, as an
    import would, holding `files` ({(source, path): content}); returns its id."""
    from server.model.manifests import manifest_checksum, manifest_id
    from server.model.records import EntryKind, ManifestEntry

    entries = []
    for (source, path), content in files.items():
        digest = hashlib.sha256(content).hexdigest()
        target = blob_path(server, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        entries.append(ManifestEntry(source, path, EntryKind.FILE, len(content), digest, 0o644))
    point_id = new_id("rp")
    assert server.database is not None
    engine = create_engine(server.database.url)
    try:
        with engine.begin() as connection:
            manifest = manifest_id(entries)
            held = connection.execute(text("SELECT 1 FROM manifest WHERE id = :id"), {"id": manifest}).first()
            if held is None:
                connection.execute(text("INSERT INTO manifest (id) VALUES (:id)"), {"id": manifest})
                for position, entry in enumerate(entries):
                    connection.execute(
                        text(
                            "INSERT INTO manifest_entry (manifest_id, position, source, path, kind,"
                            " size, sha256, mode, mtime) VALUES (:m, :pos, :source, :path, 'FILE', :size,"
                            " :sha, 420, NULL)"
                        ),
                        {
                            "m": manifest,
                            "pos": position,
                            "source": entry.source,
                            "path": entry.path,
                            "size": entry.size,
                            "sha": entry.sha256,
                        },
                    )
            connection.execute(
                text(
                    "INSERT INTO restore_point (id, label, note, origin, created_at, created_by, size_bytes,"
                    " stored_bytes, item_count, checksum, server_version, manifest_id) VALUES (:id, :label, NULL,"
                    " 'IMPORTED', :at, NULL, :size, :size, :count, :sum, 'test', :manifest)"
                ),
                {
                    "id": point_id,
                    "label": label,
                    "at": datetime.now(UTC),
                    "size": sum(e.size for e in entries),
                    "count": len(entries),
                    "sum": manifest_checksum(entries),
                    "manifest": manifest,
                },
            )
    finally:
        engine.dispose()
    return point_id
