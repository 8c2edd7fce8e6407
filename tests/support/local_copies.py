"""Exporting a restore point to a local copy through the API, as a test needs it: the finished
export operation, the local copy it made, or the ZIP archive's members."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from tests.support.api import Target, execute, wait_for_operation
from tests.support.server_process import ServerCommon

EXPORT = """mutation($id: ID!, $encrypt: Boolean!) { exportRestorePoint(restorePointId: $id, encrypt: $encrypt) {
    operation { id } userErrors { code message field } } }"""


async def export_operation(server: Target, point_id: str, *, encrypt: bool = False) -> dict[str, Any]:
    """Export a restore point and follow the export to its end, which must be a success: the
    operation's final state."""
    started = (await execute(server, EXPORT, id=point_id, encrypt=encrypt))["exportRestorePoint"]
    assert started["userErrors"] == [], started
    final = await wait_for_operation(server, started["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    return final


async def exported_copy(
    server: Target, point_id: str, fields: str = "id fileName", *, encrypt: bool = False
) -> dict[str, Any]:
    """Export a restore point (which must succeed): the local copy it made, with these fields."""
    final = await export_operation(server, point_id, encrypt=encrypt)
    query = f"query($id: ID!) {{ operation(id: $id) {{ localCopy {{ {fields} }} }} }}"
    return (await execute(server, query, id=final["id"]))["operation"]["localCopy"]


async def export_archive(server: ServerCommon, point_id: str) -> Path:
    """Export a restore point (which must succeed) to a plain ZIP: its path in the data folder,
    checked whole (every member's CRC)."""
    path = server.data_dir / "local-copies" / (await exported_copy(server, point_id, "fileName"))["fileName"]
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    return path


async def export_members(server: ServerCommon, point_id: str) -> dict[str, bytes]:
    """Export a restore point to a ZIP: its file members (not the manifest, not folders) by name."""
    with zipfile.ZipFile(await export_archive(server, point_id)) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n != "manifest.json" and not n.endswith("/")}


async def export_names(server: ServerCommon, point_id: str, prefix: str = "") -> list[str]:
    """Export a restore point to a ZIP: the names of its members (folders too) under `prefix`, sorted."""
    with zipfile.ZipFile(await export_archive(server, point_id)) as archive:
        return sorted(n for n in archive.namelist() if n.startswith(prefix))
