"""An item of a restore point as a user browses it (a file, folder, link, settings module or table),
and ItemSelection: the items of one source that applyRestorePoint and applyPreview put back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from server.api.errors import to_client_error
from server.api.pagination import page_size
from server.api.scalars import ByteCount
from server.api.types.page_info import Connection, connection_of
from server.model import items as models
from server.model.errors import DomainError
from server.model.item_merge import ItemSelection as ItemSelectionRecord

if TYPE_CHECKING:
    from server.api.context import Info
    from server.services.items.manifest_view import ManifestView

# strawberry.enum registers the domain's enum itself (see types/operation.py).
strawberry.enum(
    models.ItemKind,
    description="FILE, FOLDER and SYMLINK in a folder source (and in a source configured no more); MODULE: "
    "a settings module's JSON document; TABLE: a database table.",
)
ItemKind = models.ItemKind


@strawberry.type(description="What a restore point holds at one path of one source.")
class Item:
    source: str
    path: str = strawberry.field(
        description="As the restore point keeps it, relative to its source's top level: a folder source's "
        "paths with '/', a settings module as `<module>.json`, a table by its name alone."
    )
    kind: ItemKind
    size_bytes: ByteCount | None = strawberry.field(description="Null for a folder.")
    sha256: str | None = strawberry.field(description="The content's SHA-256; null for a folder.")
    mode: int | None
    modified_at: datetime | None
    row_count: int | None = strawberry.field(
        description="A table's rows, as counted when it was captured; null for anything else, and for a "
        "table captured before the server counted them."
    )

    @classmethod
    def from_domain(cls, item: models.Item) -> Item:
        return cls(
            source=item.source,
            path=item.path,
            kind=item.kind,
            size_bytes=ByteCount(item.size) if item.size is not None else None,
            sha256=item.sha256,
            mode=item.mode,
            modified_at=item.mtime,
            row_count=item.row_count,
        )


@strawberry.input(
    description="Items of one source to put back: `paths` as `RestorePoint.items` gives them (a folder: "
    "everything under it; a table by its name; a settings module as 'audio.json'). In the settings source "
    "a path may end in '#' and an RFC 6901 pointer ('audio.json#/volume'): that one setting, merged into "
    "the module as it is now (a setting the restore point lacks and the module has now is removed)."
)
class ItemSelection:
    source: str
    paths: list[str]

    def to_domain(self) -> ItemSelectionRecord:
        return ItemSelectionRecord(source=self.source, paths=tuple(self.paths))


def selections(items: list[ItemSelection] | None) -> list[ItemSelectionRecord] | None:
    return None if items is None else [item.to_domain() for item in items]


async def items_connection(
    info: Info,
    open_view: Callable[[], Awaitable[ManifestView]],
    *,
    source: str | None,
    path: str | None,
    first: int | None,
    after: str | None,
) -> Connection[Item]:
    """RestorePoint.items and LocalCopy.items: a page of the manifest `open_view` opens (a
    domain error as the field's top-level error)."""
    browser = info.context.services.item_browser
    try:
        size = page_size(first, info.context.config.max_page_size)
        view = await open_view()
        page = await browser.children(view, source=source, path=path, first=size, after=after)
    except DomainError as error:
        raise to_client_error(error) from None
    return connection_of(
        page, Item.from_domain, after=after, count=lambda: browser.count(view, source=source, path=path)
    )
