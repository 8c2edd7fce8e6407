"""ModuleDocuments: a module's document is made again exactly when its stored text changed."""

from __future__ import annotations

import json

from server.sources.settings.documents import ModuleDocuments, module_document_bytes


def text(settings: dict[str, object]) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def test_documents_follow_the_stored_text() -> None:
    documents = ModuleDocuments()
    rows = [("audio", text({"volume": 3})), ("network", text({"dhcp": True}))]
    assert documents.missing(rows) == rows
    documents.make(rows)
    made = documents.current(rows)
    assert [doc.data for doc in made] == [module_document_bytes({"volume": 3}), module_document_bytes({"dhcp": True})]
    assert documents.missing(rows) == []
    assert documents.text_of("audio", "a" * 64) is None  # not stored yet: no digest to go by
    made[0].stored("a" * 64)
    assert documents.text_of("audio", "a" * 64) == rows[0][1]
    assert documents.text_of("audio", "b" * 64) is None and documents.text_of("network", "a" * 64) is None

    changed = [("audio", text({"volume": 4})), ("network", rows[1][1])]
    assert documents.missing(changed) == [changed[0]]
    documents.make(documents.missing(changed))
    audio, network = documents.current(changed)
    assert audio.data == module_document_bytes({"volume": 4}) and audio.digest is None  # not stored yet
    assert network is made[1]  # the same document, not made again

    # The document before is kept too: an apply of the restore point just made finds it.
    assert documents.text_of("audio", "a" * 64) == rows[0][1]
    assert documents.missing(rows) == []
    third = [("audio", text({"volume": 5}))]
    documents.make(third)
    documents.current(third)
    assert documents.text_of("audio", "a" * 64) is None  # two newer texts since: let go
    assert documents.missing(changed) == [changed[1]]  # a module gone from the rows is let go


def test_current_makes_a_document_another_capture_replaced_meanwhile() -> None:
    documents = ModuleDocuments()
    old = [("audio", text({"volume": 3}))]
    new = [("audio", text({"volume": 9}))]
    documents.make(old)
    documents.make(new)  # a second capture, of a later text, ran in between
    (doc,) = documents.current(old)
    assert doc.text == old[0][1] and doc.data == module_document_bytes({"volume": 3})
