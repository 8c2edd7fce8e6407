"""ItemSelection: the items of one source that applyRestorePoint and applyPreview put back."""

from __future__ import annotations

import strawberry

from server.model.item_merge import ItemSelection as ItemSelectionRecord


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
