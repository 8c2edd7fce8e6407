from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.context import Info
from server.api.scalars import ByteCount
from server.api.types.node import Node
from server.model import records as models
from server.model.verification import VerifiedKind
from server.services.locations.service import LocationState

if TYPE_CHECKING:
    from server.api.types.restore_point import RestorePoint, Verification


@strawberry.enum(description="Where a location keeps its copies.")
class LocationKind(enum.Enum):
    LOCAL = "LOCAL"
    FOLDER = "FOLDER"
    S3 = "S3"


@strawberry.type(
    description="A place copies are kept: the built-in `local` (the local copies folder), or a folder or "
    "S3 bucket declared in the config file. Its copies are listed from the location itself, now."
)
class Location:
    name: str
    kind: LocationKind
    encrypted: bool = strawberry.field(description="Whether copies uploaded here are encrypted.")
    reachable: bool = strawberry.field(description="Whether the location answered just now.")
    problem: str | None = strawberry.field(description="Why it cannot be reached; null when it can.")
    all_copies: strawberry.Private[list[RemoteCopy]]

    @strawberry.field(
        description="Its copies, newest first; empty when unreachable. With `serverName`: only the copies "
        "that server made (on S3 this reads each object's metadata, without downloading it)."
    )
    async def copies(self, info: Info, server_name: str | None = None) -> list[RemoteCopy]:
        if server_name is None:
            return self.all_copies
        loaded = [
            c.copy if c.copy.detailed else await info.context.loaders.remote_copy_details.load(c.copy)
            for c in self.all_copies
        ]
        return [c for c, copy in zip(self.all_copies, loaded, strict=True) if copy.server_name == server_name]

    @classmethod
    def from_domain(cls, state: LocationState) -> Location:
        location = cls(
            name=state.name,
            kind=LocationKind(state.kind),
            encrypted=state.encrypted,
            reachable=state.reachable,
            problem=state.problem,
            all_copies=[],
        )
        location.all_copies = [RemoteCopy.from_domain(copy, location) for copy in state.copies]
        return location


@strawberry.type(description="A copy at a location, as the location lists it now.")
class RemoteCopy(Node):
    file_name: str
    size_bytes: ByteCount
    modified_at: datetime
    encrypted: bool
    problem: str | None = strawberry.field(description="Why it cannot be fetched and imported; null when it can.")
    location_name: strawberry.Private[str]
    known_location: strawberry.Private[Location | None]
    copy: strawberry.Private[models.RemoteCopy]

    @strawberry.field(
        description="The restore point it holds, from its metadata or manifest; null when unknown. "
        "(On S3, asking for it reads each object's metadata, without downloading it.)"
    )
    async def restore_point_id(self, info: Info) -> strawberry.ID | None:
        copy = self.copy if self.copy.detailed else await info.context.loaders.remote_copy_details.load(self.copy)
        return strawberry.ID(copy.restore_point_id) if copy.restore_point_id else None

    @strawberry.field(
        description="What its last verification found (read back from the location and checked against the "
        "SHA-256 recorded at upload, then read whole); null until first verified, and for the `local` "
        "location (see LocalCopy.verification)."
    )
    async def verification(
        self, info: Info
    ) -> Annotated[Verification, strawberry.lazy("server.api.types.restore_point")] | None:
        from server.api.types.restore_point import verification_of

        return await verification_of(info, VerifiedKind.REMOTE_COPY, str(self.id))

    @strawberry.field(
        description="The server that made the copy (its BACKUPS_SERVER_NAME), from its manifest or (on S3) "
        "its metadata; null for a copy made before servers had names, or put there by other means."
    )
    async def server_name(self, info: Info) -> str | None:
        copy = self.copy if self.copy.detailed else await info.context.loaders.remote_copy_details.load(self.copy)
        return copy.server_name

    @strawberry.field(description="The location that holds it.")
    async def location(self, info: Info) -> Location:
        if self.known_location is not None:
            return self.known_location
        state = await info.context.services.locations.last_known(self.location_name)
        # Locations come from the config file, read once: a copy's location is always there.
        assert state is not None, f"remote copy of unknown location {self.location_name!r}"
        return Location.from_domain(state)

    @strawberry.field(description="The restore point it holds; null when it is not in the database.")
    async def restore_point(
        self, info: Info
    ) -> Annotated[RestorePoint, strawberry.lazy("server.api.types.restore_point")] | None:
        from server.api.types.restore_point import RestorePoint

        point_id = await self.restore_point_id(info)
        if point_id is None:
            return None
        point = await info.context.loaders.restore_points.load(str(point_id))
        return RestorePoint.from_domain(point) if point else None

    @classmethod
    def from_domain(cls, copy: models.RemoteCopy, location: Location | None = None) -> RemoteCopy:
        return cls(
            id=strawberry.ID(copy.id),
            file_name=copy.file_name,
            size_bytes=ByteCount(copy.size),
            modified_at=copy.modified_at,
            encrypted=copy.encrypted,
            problem=copy.problem,
            location_name=copy.location,
            known_location=location,
            copy=copy,
        )
