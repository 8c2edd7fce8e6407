from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.context import Info
from server.api.errors import to_client_error
from server.api.scalars import ByteCount
from server.api.types.item import Item, items_connection
from server.api.types.node import Node
from server.api.types.page_info import Connection
from server.model import records as models
from server.model.errors import DomainError
from server.model.verification import Verification as DomainVerification
from server.model.verification import VerificationState, VerifiedKind

if TYPE_CHECKING:
    from server.api.types.local_copy import LocalCopy
    from server.api.types.location import RemoteCopy
    from server.api.types.schedule import Schedule

# strawberry.enum registers the domain's enum itself (see types/operation.py).
for _enum in (models.RestorePointOrigin, models.EntryKind, VerificationState):
    strawberry.enum(_enum)
RestorePointOrigin = models.RestorePointOrigin
EntryKind = models.EntryKind


@strawberry.type(
    description="What the last verification (verifyBackups) found: OK, DAMAGED (something read does not "
    "match its SHA-256, or its structure is broken) or MISSING (something it needs is not there)."
)
class Verification:
    state: VerificationState
    verified_at: datetime
    problems: list[str] = strawberry.field(
        description="Each damaged or missing item, by source and path (a copy: its file and what is wrong)."
    )
    repaired: int = strawberry.field(description="Blobs put back from a good copy by that verification.")

    @classmethod
    def from_domain(cls, found: DomainVerification | None) -> Verification | None:
        if found is None:
            return None
        return cls(
            state=found.state, verified_at=found.verified_at, problems=list(found.problems), repaired=found.repaired
        )


async def verification_of(info: Info, kind: VerifiedKind, subject_id: str) -> Verification | None:
    """The stored verification of a restore point or copy (batched per request)."""
    return Verification.from_domain(await info.context.loaders.verifications.load((kind, subject_id)))


@strawberry.type(description="One item of a restore point, as its manifest lists it.")
class ManifestEntry:
    source: str
    path: str
    kind: EntryKind
    size_bytes: ByteCount
    sha256: str | None
    mode: int

    @classmethod
    def from_domain(cls, entry: models.ManifestEntry) -> ManifestEntry:
        return cls(
            source=entry.source,
            path=entry.path,
            kind=entry.kind,
            size_bytes=ByteCount(entry.size),
            sha256=entry.sha256,
            mode=entry.mode,
        )


@strawberry.type(description="The configuration of every source, captured at one moment.")
class RestorePoint(Node):
    label: str
    note: str | None
    origin: RestorePointOrigin
    created_at: datetime
    created_by: str | None
    size_bytes: ByteCount = strawberry.field(description="Total size of the captured content.")
    stored_bytes: ByteCount = strawberry.field(
        description="Bytes this restore point added to storage; content shared with other "
        "restore points is stored once."
    )
    item_count: int
    checksum: str = strawberry.field(description="SHA-256 of the manifest (entries, sizes, hashes).")
    server_version: str
    pinned: bool = strawberry.field(
        default=False,
        description="Kept by every retention rule; deleteRestorePoint refuses it (PINNED) until it is unpinned.",
    )
    expires_at: datetime | None = strawberry.field(
        default=None,
        description="When it deletes itself (as retention deletes: never while pinned or in use); null: never.",
    )
    schedule_id: strawberry.Private[str | None] = None

    @strawberry.field(description="The schedule that made it; null for any other, or once that schedule is deleted.")
    async def schedule(self, info: Info) -> Annotated[Schedule, strawberry.lazy("server.api.types.schedule")] | None:
        from server.api.types.schedule import Schedule

        if self.schedule_id is None:
            return None
        found = await info.context.services.schedules.get(self.schedule_id)
        return Schedule.from_domain(found) if found else None

    @strawberry.field(description="Every item the restore point holds, in manifest order.")
    async def entries(self, info: Info) -> list[ManifestEntry]:
        entries = await info.context.services.restore_points.entries(str(self.id))
        return [ManifestEntry.from_domain(entry) for entry in entries]

    @strawberry.field(
        description="What is directly inside a folder (a Relay connection, by source and path, read from the "
        "manifest alone): `path` a folder of `source`; no path: the top level of `source`, or of every "
        "source when `source` is null too. A source, folder or restore point it does not hold is NOT_FOUND; "
        "a path that is not a folder, `..`, absolute, with a NUL byte or an empty part, or a path without "
        "`source`, INVALID_INPUT."
    )
    async def items(
        self,
        info: Info,
        source: str | None = None,
        path: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Item]:
        browser = info.context.services.item_browser
        return await items_connection(
            info,
            lambda: browser.restore_point(str(self.id)),
            source=source,
            path=path,
            first=first,
            after=after,
        )

    @strawberry.field(
        description="The sources the restore point holds entries of, sorted: the top level to browse its items from."
    )
    async def sources(self, info: Info) -> list[str]:
        browser = info.context.services.item_browser
        try:
            view = await browser.restore_point(str(self.id))
            return await view.sources()
        except DomainError as error:
            raise to_client_error(error) from None

    @strawberry.field(description="Local copies (ZIP files) made of this restore point.")
    async def local_copies(
        self, info: Info
    ) -> list[Annotated[LocalCopy, strawberry.lazy("server.api.types.local_copy")]]:
        from server.api.types.local_copy import LocalCopy

        copies = await info.context.loaders.local_copies_of.load(str(self.id))
        return [LocalCopy.from_domain(copy) for copy in copies]

    @strawberry.field(
        description="Where copies of this restore point exist now: every location, `local` included "
        "(a location that does not answer within a few seconds contributes none: see "
        "remoteCopiesUnknownAt)."
    )
    async def remote_copies(
        self, info: Info
    ) -> list[Annotated[RemoteCopy, strawberry.lazy("server.api.types.location")]]:
        from server.api.types.location import RemoteCopy

        found = await info.context.loaders.remote_copies_of.load(str(self.id))
        return [RemoteCopy.from_domain(copy) for copy in found.copies]

    @strawberry.field(
        description="The locations that could not be listed just now (unreachable, or no answer "
        "within a few seconds): whether they hold a copy of this restore point is not known now. "
        "Empty when every location answered."
    )
    async def remote_copies_unknown_at(self, info: Info) -> list[str]:
        found = await info.context.loaders.remote_copies_of.load(str(self.id))
        return list(found.unknown_at)

    @strawberry.field(description="What its last verification found; null until it is first verified.")
    async def verification(self, info: Info) -> Verification | None:
        return await verification_of(info, VerifiedKind.RESTORE_POINT, str(self.id))

    @classmethod
    def from_domain(cls, point: models.RestorePoint) -> RestorePoint:
        return cls(
            id=strawberry.ID(point.id),
            label=point.label,
            note=point.note,
            origin=point.origin,
            created_at=point.created_at,
            created_by=point.created_by,
            size_bytes=ByteCount(point.size_bytes),
            stored_bytes=ByteCount(point.stored_bytes),
            item_count=point.item_count,
            checksum=point.checksum,
            server_version=point.server_version,
            pinned=point.pinned,
            expires_at=point.expires_at,
            schedule_id=point.schedule_id,
        )
