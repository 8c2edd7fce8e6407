"""docs/architecture.md names every folder of server/, and no folder that is gone; no folder of
server/ holds more than 15 modules flat (issue 24: rooms that hold one idea)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
SKIPPED = {"server/storage/db/migrations/versions"}  # Alembic's revisions, one module each


def server_folders() -> set[str]:
    return {
        path.parent.relative_to(ROOT).as_posix()
        for path in (ROOT / "server").rglob("*.py")
        if "__pycache__" not in path.parts
    } - SKIPPED


def test_the_architecture_doc_names_every_folder_of_the_tree() -> None:
    named = {m.group(1).rstrip("/") for m in re.finditer(r"^(server/\S*)", DOC.read_text(), re.M)}
    assert named == server_folders(), (
        f"missing from docs/architecture.md: {sorted(server_folders() - named)}; "
        f"named but gone: {sorted(named - server_folders())}"
    )


def test_no_folder_of_the_server_holds_more_than_15_modules_flat() -> None:
    crowded = {
        folder: count
        for folder in server_folders()
        if (count := len([p for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"])) > 15
    }
    assert not crowded
