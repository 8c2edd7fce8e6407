"""Deleting a local copy, and holding one so that it is not deleted while it is read (an
import, a download, an upload to a location): the hold and the delete meet on one key per file."""

from __future__ import annotations

import asyncio

from server.model.records import LocalCopy
from server.operations.holds import Held, Hold, HoldRegistry
from server.storage.local_copy.folder import LocalCopyFolder, copy_id, file_name_of


async def delete_copy(folder: LocalCopyFolder, holds: HoldRegistry, local_copy_id: str) -> str:
    """Delete a local copy; BUSY while an import or a download reads it."""
    name = file_name_of(local_copy_id) or local_copy_id
    busy = f"local copy {name} is being imported or downloaded; try again after it"
    async with holds.deleting(Held.LOCAL_COPY, _canonical(local_copy_id), busy=busy):
        copy = await asyncio.to_thread(folder.require, local_copy_id, "id")
        await asyncio.to_thread(folder.delete, copy)
    return copy.id


async def hold_copy(
    folder: LocalCopyFolder, holds: HoldRegistry, local_copy_id: str, field: str = "localCopyId"
) -> tuple[LocalCopy, Hold]:
    """Hold a local copy for something that will read it (an import, a download), then
    check it exists (NOT_FOUND if a delete won); release the hold when done."""
    hold = await holds.hold(Held.LOCAL_COPY, _canonical(local_copy_id))
    try:
        return await asyncio.to_thread(folder.require, local_copy_id, field), hold
    except BaseException:
        hold.release()
        raise


def _canonical(local_copy_id: str) -> str:
    """One id per file (an id decodes leniently), so a hold and a delete meet on one key."""
    name = file_name_of(local_copy_id)
    return copy_id(name) if name is not None else local_copy_id
