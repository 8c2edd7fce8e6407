"""README stays short and its links lead somewhere: every relative link names a file of the
repository, and every #anchor a heading of the page it points into."""

from __future__ import annotations

import re

from tests.docs.markdown_blocks import ROOT

README = ROOT / "README.md"
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings, as GitHub and MkDocs make them."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")
        found.add(slug)
    return found


def test_readme_is_at_most_250_lines() -> None:
    assert len(README.read_text().splitlines()) <= 250


def test_every_readme_link_resolves() -> None:
    text = README.read_text()
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        page = (README.parent / path) if path else README
        if not page.exists():
            problems.append(f"{target}: no such file")
        elif anchor and page.suffix == ".md" and anchor not in anchors(page.read_text()):
            problems.append(f"{target}: no such heading")
    assert problems == []
