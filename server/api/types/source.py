from __future__ import annotations

import enum

import strawberry

from server.api.scalars import ByteCount
from server.sources.base import SourceInfo


@strawberry.enum(description="What kind of place a source is.")
class SourceKind(enum.StrEnum):
    SETTINGS = "SETTINGS"
    DIRECTORY = "DIRECTORY"
    DATABASE = "DATABASE"


@strawberry.type(description="A place configuration lives; every restore point captures every source.")
class Source:
    name: str = strawberry.field(
        description="The name in the config file; entries' `source` and the folder of a local copy's ZIP."
    )
    kind: SourceKind
    location: str | None = strawberry.field(
        description="The folder, or the database URL without its password; null for the settings store."
    )
    reachable: bool = strawberry.field(description="Whether it can be read now.")
    size_bytes: ByteCount | None = strawberry.field(
        description="Its current size: the managed files of a folder, the storage of a database's "
        "tables (the file, for SQLite), the module documents of the settings store. Null when "
        "unreachable."
    )
    detail: str | None = strawberry.field(description="What it holds, in a few words.")
    problem: str | None = strawberry.field(description="Why it cannot be read now; null when reachable.")

    @classmethod
    def from_domain(cls, info: SourceInfo) -> Source:
        return cls(
            name=info.name,
            kind=SourceKind(info.kind.upper()),
            location=info.location,
            reachable=info.reachable,
            size_bytes=ByteCount(info.size_bytes) if info.size_bytes is not None else None,
            detail=info.detail,
            problem=info.problem,
        )
