"""The built-in settings store as a source: one JSON file per module."""

from __future__ import annotations

import asyncio
import functools
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.names import is_module_name
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import CapturedItem, OpenBlob, SourceInfo
from server.sources.settings.documents import ModuleDocuments
from server.storage.db import modules_repo
from server.storage.db.database import Database


class SettingsSource:
    kind = "settings"

    def __init__(self, db: Database, name: str = "settings") -> None:
        self.name = name
        self._db = db
        self._documents = ModuleDocuments()  # made from the stored text, once per text

    async def describe(self) -> SourceInfo:
        items = await self.capture()
        return SourceInfo(
            name=self.name,
            kind=self.kind,
            reachable=True,
            size_bytes=sum(item.size for item in items),
            detail=f"{len(items)} modules",
        )

    async def capture(self) -> Sequence[CapturedItem]:
        async with self._db.read() as session:  # one transaction: one moment
            modules = await modules_repo.list_module_texts(session)
        rows = [(name, text) for name, text, _ in modules]
        if missing := self._documents.missing(rows):
            await asyncio.to_thread(self._documents.make, missing)  # parsing and dumping: off the loop
        items = []
        for (name, _, updated_at), document in zip(modules, self._documents.current(rows), strict=True):
            items.append(
                CapturedItem(
                    path=f"{name}.json",
                    kind=EntryKind.FILE,
                    size=len(document.data),
                    mode=0o644,
                    mtime=updated_at,
                    open=functools.partial(io.BytesIO, document.data),
                    # Once the store holds these very bytes, it is told their digest: pinned
                    # after a stat, not hashed again.
                    digest=document.digest,
                    on_stored=document.stored,
                )
            )
        return items

    async def apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        texts = await asyncio.to_thread(read_module_texts, entries, open_blob, self._documents.text_of)
        async with self._db.write() as session:
            await modules_repo.replace_all_module_texts(session, texts)

    async def replace(self, session: AsyncSession, documents: dict[str, Any]) -> None:
        """Replace every module inside the caller's transaction."""
        await modules_repo.replace_all_modules(session, documents)


def read_module_texts(
    entries: Sequence[ManifestEntry], open_blob: OpenBlob, known: Callable[[str, str], str | None]
) -> dict[str, str]:
    """Check every module document and give its stored (canonical JSON) text, before anything
    is replaced. `known(name, digest)`: the text of a document already made and stored with
    that digest, which needs neither reading nor parsing (the same text the parse would give)."""
    texts: dict[str, str] = {}
    for entry in entries:
        name = entry.path.removesuffix(".json")
        if entry.kind is not EntryKind.FILE or not entry.path.endswith(".json"):
            raise OperationFailed(
                OperationErrorCode.INVALID_ENTRY, f"settings entry {entry.path!r} is not a module file"
            )
        if not is_module_name(name):
            raise OperationFailed(
                OperationErrorCode.INVALID_ENTRY, f"settings entry {entry.path!r} is not a module name"
            )
        if entry.sha256 is None:
            raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"settings entry {entry.path!r} has no content")
        if (text := known(name, entry.sha256)) is not None:
            texts[name] = text
            continue
        with open_blob(entry.sha256) as blob:
            try:
                document = json.loads(blob.read())
            except ValueError as error:
                raise OperationFailed(
                    OperationErrorCode.INVALID_ENTRY, f"module {name!r} is not JSON: {error}"
                ) from None
        if not isinstance(document, dict):
            raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"module {name!r} is not a JSON object")
        texts[name] = modules_repo.canonical_json(document)
    return texts
