"""compareRestorePoints and applyPreview: which items differ, and how, read off the event loop.

Every restore point read is held meanwhile (operations/holds.py), so a delete gets BUSY
instead of removing blobs under the reader. The preview reads the running configuration the
way a capture does (each source's snapshot, with the hash cache), and carries its fingerprint:
applyRestorePoint(expectedFingerprint:) refuses with CONFLICT once it no longer matches.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Sequence
from typing import BinaryIO

from server.model.diffs.config_diff import Change, ChangeKind, ConfigurationDiff, compare
from server.model.diffs.diff_content import ChangeContent, Limits, content_of
from server.model.errors import DomainError, InvalidInput, OperationErrorCode, OperationFailed, quoted
from server.model.item_merge import ItemChoice, ItemSelection
from server.model.manifests import manifest_checksum
from server.model.names import each_once
from server.model.records import ManifestEntry
from server.operations.holds import Hold
from server.services.apply.items import merge_source
from server.services.capture.store import manifest_entry
from server.services.items.selection import check_items
from server.services.restore_points import RestorePointService
from server.services.system import hash_items
from server.sources.base import CapturedItem, Source
from server.storage.blobs.content_store import ContentStore


class SourceUnavailable(DomainError):
    code = OperationErrorCode.SOURCE_UNAVAILABLE


class UnknownSource(DomainError):
    code = OperationErrorCode.UNKNOWN_SOURCE


class SchemaMismatch(DomainError):
    code = OperationErrorCode.SCHEMA_MISMATCH


class DiffService:
    def __init__(
        self, *, restore_points: RestorePointService, sources: Sequence[Source], store: ContentStore, limits: Limits
    ) -> None:
        self._points = restore_points
        self._sources = sources
        self._store = store
        self.limits = limits

    async def compare(self, from_id: str, to_id: str) -> ConfigurationDiff:
        """The changes going from restore point `from_id` to `to_id`."""
        holds = await self._hold([(from_id, "from"), (to_id, "to")])
        try:
            before = await self._points.entries(from_id)
            after = await self._points.entries(to_id) if to_id != from_id else before
            order = [source.name for source in self._sources]
            summary, changes = await asyncio.to_thread(compare, before, after, order)
        finally:
            for hold in holds:
                hold.release()
        return ConfigurationDiff(
            summary=summary,
            changes=changes,
            source_kinds=self._kinds(),
            open_before=self._open_blob,
            open_after=self._open_blob,
            holding=(from_id, to_id),
        )

    async def preview(
        self, point_id: str, sources: Sequence[str] | None, selections: Sequence[ItemSelection] | None = None
    ) -> ConfigurationDiff:
        """The changes applying restore point `point_id` (only `sources`, or only the items in
        `selections`, if named) would make to the configuration as it is now."""
        if selections is not None and sources:
            raise InvalidInput(
                "name either `sources` (whole sources) or `items` (items in them), not both", field="items"
            )
        chosen = self.chosen_sources(sources)
        merged: dict[str, bytes] = {}  # merged module documents, by digest: read by the diff's content
        (hold,) = await self._hold([(point_id, "restorePointId")])
        try:
            stored = await self._points.entries(point_id)
            choices = None
            if selections is not None:
                choices = check_items(selections, point_id, stored, self._sources)
            elif (point := await self._points.get(point_id)) is not None and point.items_only is not None:
                # An items-only safety restore point is applied as its items: previewed so too.
                choices = tuple(ItemChoice(s, p) for s, p in point.items_only if not sources or s in sources)
            if choices is not None:
                touched = {choice.source for choice in choices}
                chosen = [source for source in self._sources if source.name in touched]
            current, items, fingerprint = await self._current()
            names = {source.name for source in chosen}
            before = [e for e in current if e.source in names]
            if not sources and choices is None:
                self._check_known(point_id, stored)
            after = [e for e in stored if e.source in names]
            if choices is not None:
                after = await asyncio.to_thread(self._merged, choices, before, after, items, merged)
            order = [source.name for source in self._sources]
            summary, changes = await asyncio.to_thread(compare, before, after, order)
            kinds = self._kinds()
            await asyncio.to_thread(self._check_schemas, changes, kinds, items)
        finally:
            hold.release()

        def open_current(entry: ManifestEntry) -> BinaryIO:
            item = items[(entry.source, entry.path)]
            assert item.open is not None
            return item.open()

        return ConfigurationDiff(
            summary=summary,
            changes=changes,
            fingerprint=fingerprint,
            source_kinds=kinds,
            open_before=open_current,
            open_after=lambda entry: (
                io.BytesIO(merged[entry.sha256]) if entry.sha256 in merged else self._open_blob(entry)
            ),
            holding=(point_id,),
            before_live=True,
        )

    async def content(self, diff: ConfigurationDiff, change: Change) -> ChangeContent:
        """The readable difference of one change, with its restore points held meanwhile."""
        holds = await self._hold([(point_id, "id") for point_id in diff.holding])
        try:
            assert diff.open_before is not None and diff.open_after is not None
            return await asyncio.to_thread(
                content_of,
                change,
                diff.source_kinds.get(change.source, ""),
                diff.open_before,
                diff.open_after,
                self.limits,
                before_live=diff.before_live,
            )
        finally:
            for hold in holds:
                hold.release()

    async def fingerprint(self) -> str:
        """The running configuration's fingerprint, read as the preview reads it."""
        return (await self._current())[2]

    def chosen_sources(self, names: Sequence[str] | None) -> list[Source]:
        """The configured sources named (all when none are); INVALID_INPUT for an unknown name."""
        configured = list(self._sources)
        if not names:
            return configured
        known = {source.name for source in configured}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise InvalidInput(
                f"no source named {quoted(unknown[0])} is configured (sources: {', '.join(sorted(known))})",
                field="sources",
            )
        wanted = set(each_once(names, what="source", field="sources"))
        return [source for source in configured if source.name in wanted]

    # -- helpers -----------------------------------------------------------------------------

    async def _hold(self, wanted: Sequence[tuple[str, str]]) -> list[Hold]:
        holds: list[Hold] = []
        try:
            for point_id, field in wanted:
                _, hold = await self._points.hold(point_id, field=field)
                holds.append(hold)
        except BaseException:
            for hold in holds:
                hold.release()
            raise
        return holds

    async def _current(self) -> tuple[list[ManifestEntry], dict[tuple[str, str], CapturedItem], str]:
        """Every source's entries now (hashes from the hash cache where it vouches for them),
        its items by (source, path), and the fingerprint of it all."""
        entries: list[ManifestEntry] = []
        items: dict[tuple[str, str], CapturedItem] = {}
        for source in self._sources:
            try:
                snapshot = await source.capture()
                digests = await asyncio.to_thread(hash_items, snapshot)
            except OperationFailed as error:
                raise SourceUnavailable(error.message, field="sources") from None
            except Exception as error:
                raise SourceUnavailable(f"source {source.name!r} could not be read: {error}", field="sources") from None
            for item, digest in zip(snapshot, digests, strict=True):
                entries.append(manifest_entry(source, item, digest))
                items[(source.name, item.path)] = item
        return entries, items, manifest_checksum(entries)

    def _check_known(self, point_id: str, entries: Sequence[ManifestEntry]) -> None:
        """UNKNOWN_SOURCE, as the apply would fail, when the restore point holds a source not
        configured here (a partial preview of configured sources leaves it out instead)."""
        configured = {source.name for source in self._sources}
        unknown = sorted({e.source for e in entries} - configured)
        if unknown:
            raise UnknownSource(
                f"restore point {point_id} holds content of source {', '.join(repr(n) for n in unknown)}, which is "
                "not configured on this server: an apply of it all would fail; preview the configured "
                "sources with `sources`",
                field="restorePointId",
            )

    def _merged(
        self,
        choices: Sequence[ItemChoice],
        before: Sequence[ManifestEntry],
        after: Sequence[ManifestEntry],
        items: dict[tuple[str, str], CapturedItem],
        merged: dict[str, bytes],
    ) -> list[ManifestEntry]:
        """What the touched sources would hold after the item apply (blocking): as the apply
        merges them, with merged module documents kept in `merged` instead of the store."""

        def read_now(entry: ManifestEntry) -> bytes:
            opener = items[(entry.source, entry.path)].open
            assert opener is not None
            with opener() as blob:
                return blob.read()

        def put(data: bytes) -> tuple[str, int]:
            digest = hashlib.sha256(data).hexdigest()
            merged[digest] = data
            return digest, len(data)

        result: list[ManifestEntry] = []
        for name in dict.fromkeys(choice.source for choice in choices):
            try:
                entries, _ = merge_source(
                    [e for e in before if e.source == name],
                    [e for e in after if e.source == name],
                    [c for c in choices if c.source == name],
                    read_now=read_now,
                    read_then=self._read_blob,
                    put=put,
                )
            except OperationFailed as failure:
                raise InvalidInput(failure.message, field="items") from None
            result.extend(entries)
        return result

    def _kinds(self) -> dict[str, str]:
        return {source.name: source.kind for source in self._sources}

    def _read_blob(self, entry: ManifestEntry) -> bytes:
        with self._open_blob(entry) as blob:
            return blob.read()

    def _open_blob(self, entry: ManifestEntry) -> BinaryIO:
        assert entry.sha256 is not None
        return self._store.open(entry.sha256)

    def _check_schemas(
        self, changes: Sequence[Change], kinds: dict[str, str], items: dict[tuple[str, str], CapturedItem]
    ) -> None:
        """Refuse (SCHEMA_MISMATCH) what the apply would refuse: a database source whose
        tables, or a table's columns, differ from the restore point's (blocking)."""
        problems: list[str] = []
        for change in changes:
            if kinds.get(change.source) != "database":
                continue
            table = change.path.removesuffix(".jsonl")
            if change.kind is ChangeKind.ADDED:
                problems.append(f"source {change.source!r}: table {table!r} is missing from the database")
            elif change.kind is ChangeKind.REMOVED:
                problems.append(
                    f"source {change.source!r}: table {table!r} is in the database but not in the restore point"
                )
            elif change.before is not None and change.after is not None:
                item = items[(change.source, change.path)]
                assert item.open is not None and change.after.sha256 is not None
                with item.open() as live, self._store.open(change.after.sha256) as stored:
                    ours, theirs = _columns(live.readline()), _columns(stored.readline())
                if ours != theirs:
                    problems.append(
                        f"source {change.source!r}: table {table!r} has columns {_shown(ours)} in the database "
                        f"but {_shown(theirs)} in the restore point"
                    )
        if problems:
            raise SchemaMismatch(
                f"the database does not match the restore point, an apply would change nothing: {'; '.join(problems)}",
                field="restorePointId",
            )


def _columns(header: bytes) -> list[tuple[str, str]] | None:
    try:
        return [(str(c["name"]), str(c["type"])) for c in json.loads(header)["columns"]]
    except (ValueError, KeyError, TypeError):
        return None


def _shown(columns: list[tuple[str, str]] | None) -> str:
    return "(unreadable)" if columns is None else "(" + ", ".join(f"{n} {t}" for n, t in columns) + ")"
