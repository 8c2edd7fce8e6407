"""The fenced code blocks of the manual's Markdown pages, with their language and title."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<options>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    title: str | None
    text: str

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the page, in order."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        title = TITLE.search(match["options"])
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match["lang"], title["title"] if title else None, match["body"]))
    return found


def pages() -> list[Path]:
    """The manual's pages and README."""
    return sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
