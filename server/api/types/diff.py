"""ConfigurationDiff: what differs between two configurations, change by change."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry
from strawberry.scalars import JSON

from server.api.context import Info
from server.api.pagination import page_size
from server.api.scalars import ByteCount
from server.api.types.page_info import PageInfo
from server.api.types.restore_point import ManifestEntry
from server.model.diffs import config_diff
from server.model.diffs.config_diff import ChangeKind
from server.model.diffs.diff_content import ChangeContent

strawberry.enum(ChangeKind, description="How an item differs: ADDED, REMOVED, or CHANGED (content, mode, kind).")


@strawberry.type(description="How many items were added, removed, changed and left unchanged, and their sizes.")
class DiffSummary:
    added: int
    removed: int
    changed: int
    unchanged: int
    added_bytes: ByteCount = strawberry.field(description="The size of the items added.")
    removed_bytes: ByteCount = strawberry.field(description="The size of the items removed.")
    changed_bytes: ByteCount = strawberry.field(description="The new size of the items changed.")

    @classmethod
    def from_domain(cls, summary: config_diff.DiffSummary) -> DiffSummary:
        return cls(
            added=summary.added,
            removed=summary.removed,
            changed=summary.changed,
            unchanged=summary.unchanged,
            added_bytes=ByteCount(summary.added_bytes),
            removed_bytes=ByteCount(summary.removed_bytes),
            changed_bytes=ByteCount(summary.changed_bytes),
        )


@strawberry.type(description="One changed value of a settings module, by its JSON Pointer path.")
class SettingChange:
    path: str
    before: JSON | None = strawberry.field(description="null when the key was absent (see `beforePresent`).")
    after: JSON | None = strawberry.field(description="null when the key is absent (see `afterPresent`).")
    before_present: bool
    after_present: bool


@strawberry.type(description="One item that differs. The content fields read the content (off the event loop).")
class ConfigurationChange:
    source: str
    path: str
    kind: ChangeKind
    before: ManifestEntry | None
    after: ManifestEntry | None
    change: strawberry.Private[config_diff.Change]
    diff: strawberry.Private[config_diff.ConfigurationDiff]
    # One read for all of textDiff, truncated and settingsChanges, which resolve concurrently.
    _content: strawberry.Private[asyncio.Future[ChangeContent] | None] = None

    async def _read(self, info: Info) -> ChangeContent:
        if self._content is None:
            self._content = asyncio.ensure_future(info.context.services.diffs.content(self.diff, self.change))
        return await self._content

    @strawberry.field(
        description="A unified diff, for text (UTF-8) items and database table files (row by row: a table "
        "file lists its rows sorted by key); null for binary content, folders and settings modules."
    )
    async def text_diff(self, info: Info) -> str | None:
        return (await self._read(info)).text_diff

    @strawberry.field(
        description="Whether textDiff or settingsChanges was cut at the server's limit "
        "(BACKUPS_DIFF_TEXT_LIMIT_BYTES per side, BACKUPS_DIFF_MAX_BYTES for a diff)."
    )
    async def truncated(self, info: Info) -> bool:
        return (await self._read(info)).truncated

    @strawberry.field(description="For a settings module: each changed JSON path with its values before and after.")
    async def settings_changes(self, info: Info) -> list[SettingChange] | None:
        found = (await self._read(info)).settings_changes
        if found is None:
            return None
        return [
            SettingChange(
                path=c.path,
                before=_json(c.before),
                after=_json(c.after),
                before_present=c.before_present,
                after_present=c.after_present,
            )
            for c in found
        ]


def _json(value: Any) -> Any:
    return None if value is None else JSON(value)


@strawberry.type
class ConfigurationChangeEdge:
    cursor: str
    node: ConfigurationChange


@strawberry.type(description="A page of changes, in source order then path order (a Relay connection).")
class ConfigurationChangeConnection:
    edges: list[ConfigurationChangeEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="How many changes match the filters.")

    @strawberry.field(description="The nodes of `edges`, for clients that need no cursors.")
    def nodes(self) -> list[ConfigurationChange]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="What differs between two configurations.")
class ConfigurationDiff:
    summary: DiffSummary
    fingerprint: str | None = strawberry.field(
        description="For a preview: the running configuration's fingerprint, to pass to "
        "applyRestorePoint(expectedFingerprint:); null for a comparison of restore points."
    )
    diff: strawberry.Private[config_diff.ConfigurationDiff]

    @strawberry.field(description="The changes, filtered by source and kind; `after` is a cursor of this list.")
    def changes(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        source: str | None = None,
        kind: list[ChangeKind] | None = None,
    ) -> ConfigurationChangeConnection:
        found, more = self.diff.page(
            first=page_size(first, info.context.config.max_page_size), after=after, source=source, kinds=kind
        )
        edges = [ConfigurationChangeEdge(cursor=cursor, node=_change(change, self.diff)) for change, cursor in found]
        total = sum(
            1 for c in self.diff.changes if (source is None or c.source == source) and (not kind or c.kind in kind)
        )
        return ConfigurationChangeConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=more,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=total,
        )

    @classmethod
    def from_domain(cls, diff: config_diff.ConfigurationDiff) -> ConfigurationDiff:
        return cls(summary=DiffSummary.from_domain(diff.summary), fingerprint=diff.fingerprint, diff=diff)


def _change(change: config_diff.Change, diff: config_diff.ConfigurationDiff) -> ConfigurationChange:
    return ConfigurationChange(
        source=change.source,
        path=change.path,
        kind=change.kind,
        before=ManifestEntry.from_domain(change.before) if change.before else None,
        after=ManifestEntry.from_domain(change.after) if change.after else None,
        change=change,
        diff=diff,
    )
