"""The settings store's module documents, each made once from the text it is stored as.

Making a module's document (parse its stored JSON, dump it sorted and indented) is most of
a settings capture: 170-220 ms for the bench's 2.8 MB small config, in pure Python since
`json` has no C encoder for indented output, on every restore point, and four times in an
apply (the snapshot before it, the reload, the read-back, the fingerprint). The document is
a function of the stored text alone, so it is kept with that text and made again only when
the text differs: after a change to one module, only that module is dumped again.

Each document also remembers the digest the content store gave its bytes once it stored
them, which the capture passes on as a hint: an unchanged module is pinned (after one stat
showing the store still holds it) without being hashed again; and an apply of a module whose
document it knows by that digest stores the text it was made from, reading and parsing nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any


def module_document_bytes(settings: dict[str, Any]) -> bytes:
    """The file a module becomes: sorted, indented JSON, so copies diff well and hash stably."""
    return (json.dumps(settings, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


class ModuleDocument:
    """One module's document, and the digest the store gave it (None until it stored it)."""

    __slots__ = ("data", "digest", "text")

    def __init__(self, text: str, data: bytes) -> None:
        self.text = text  # the stored canonical JSON it was made from
        self.data = data
        self.digest: str | None = None

    def stored(self, digest: str) -> None:
        """The content store holds these bytes under `digest` (called from a worker thread)."""
        self.digest = digest


# Documents kept per module: the current text's, and the one before it, which is what an
# apply of the restore point just made puts back (a setting changed, then undone). It is
# then not parsed when applied, nor dumped again when the reload and the read-back capture it.
KEPT = 2


class ModuleDocuments:
    """The documents of the modules as last read, by name: at most KEPT per module, newest first."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[ModuleDocument, ...]] = {}
        self._lock = threading.Lock()  # two captures at once (a thread each) may both update it

    def _find(self, name: str, text: str) -> ModuleDocument | None:
        return next((doc for doc in self._by_name.get(name, ()) if doc.text == text), None)

    def missing(self, rows: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (name, text) rows whose document is not made yet, or was made from other text."""
        return [(name, text) for name, text in rows if self._find(name, text) is None]

    def make(self, rows: Sequence[tuple[str, str]]) -> None:
        """Make the documents of these (name, text) rows (blocking: run it in a thread)."""
        made = [(name, _made(text)) for name, text in rows]
        with self._lock:
            for name, doc in made:
                self._by_name[name] = (doc, *self._by_name.get(name, ()))[:KEPT]

    def text_of(self, name: str, digest: str) -> str | None:
        """The stored text of module `name` whose document the store holds under `digest`, if known."""
        return next((doc.text for doc in self._by_name.get(name, ()) if doc.digest == digest), None)

    def current(self, rows: Sequence[tuple[str, str]]) -> list[ModuleDocument]:
        """The documents of these rows, in their order; modules no longer among them are let
        go. One that other captures pushed out meanwhile is made here again."""
        documents = [self._find(name, text) or _made(text) for name, text in rows]
        with self._lock:
            known = self._by_name
            self._by_name = {
                name: (doc, *(other for other in known.get(name, ()) if other is not doc))[:KEPT]
                for (name, _), doc in zip(rows, documents, strict=True)
            }
        return documents


def _made(text: str) -> ModuleDocument:
    return ModuleDocument(text, module_document_bytes(json.loads(text)))
