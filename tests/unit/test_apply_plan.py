"""Planning an apply: entries grouped per configured source; foreign sources refused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from server.model.errors import OperationFailed
from server.model.records import (
    EntryKind,
    ManifestEntry,
    RestorePoint,
    RestorePointOrigin,
)
from server.services.apply.plan import make_plan
from server.services.restart import OutputLog
from server.services.system import same_content

POINT = RestorePoint("rp_1", "x", None, RestorePointOrigin.MANUAL, datetime.now(UTC), None, 0, 0, 0, "0" * 64, "test")


class NamedSource:
    kind = "test"

    def __init__(self, name: str) -> None:
        self.name = name


def entry(source: str, path: str, digest: str = "a" * 64) -> ManifestEntry:
    return ManifestEntry(source, path, EntryKind.FILE, 1, digest, 0o644)


def sources(*names: str) -> Sequence[NamedSource]:
    return [NamedSource(name) for name in names]


def test_entries_go_to_their_sources_in_configured_order() -> None:
    entries = [entry("files", "a"), entry("settings", "x.json"), entry("files", "b")]
    plan, untouched = make_plan(POINT, entries, sources("settings", "files", "db"))  # type: ignore[arg-type]
    assert [(s.name, [e.path for e in es]) for s, es in plan.steps] == [("settings", ["x.json"]), ("files", ["a", "b"])]
    assert plan.source_names == ("settings", "files")
    assert untouched == ["db"]


def test_entries_of_a_source_not_configured_are_refused() -> None:
    entries = [entry("settings", "x.json"), entry("media", "a"), entry("old", "b")]
    with pytest.raises(OperationFailed) as raised:
        make_plan(POINT, entries, sources("settings"))  # type: ignore[arg-type]
    assert raised.value.code == "UNKNOWN_SOURCE"
    assert "'media', 'old'" in raised.value.message and "nothing was changed" in raised.value.message


def test_same_content_ignores_order_and_mtimes() -> None:
    one = [entry("s", "a"), entry("s", "b", "b" * 64)]
    assert same_content(one, list(reversed(one)))
    assert not same_content(one, one[:1])
    assert not same_content(one, [entry("s", "a"), entry("s", "b", "c" * 64)])


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str, level: object = None) -> None:
        self.lines.append(message)


def test_command_output_becomes_lines() -> None:
    sink = Lines()
    output = OutputLog(sink)  # type: ignore[arg-type]
    output.feed(b"one\ntw")
    output.feed(b"o\r\nbad \xff byte\n")
    output.feed(b"no newline at the end")
    output.close()
    assert sink.lines == ["restart> one", "restart> two", "restart> bad \ufffd byte", "restart> no newline at the end"]
