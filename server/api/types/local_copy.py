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
from server.model.verification import VerifiedKind

if TYPE_CHECKING:
    from server.api.types.restore_point import RestorePoint, Verification


@strawberry.type(description="A ZIP file in the local copies folder: exported here, uploaded, or copied in by hand.")
class LocalCopy(Node):
    file_name: str
    path: str = strawberry.field(description="Where the file lies on the server.")
    size_bytes: ByteCount
    modified_at: datetime
    restore_point_id: strawberry.ID | None = strawberry.field(
        description="The restore point the copy holds, read from its manifest; null when unreadable."
    )
    problem: str | None = strawberry.field(description="Why the copy cannot be imported; null when it can.")
    encrypted: bool = strawberry.field(
        default=False, description="An age-encrypted copy (`.zip.age`); importing decrypts it as it verifies."
    )
    server_name: str | None = strawberry.field(
        default=None,
        description="The server that made the copy (its BACKUPS_SERVER_NAME), from its manifest; null for a "
        "copy made before servers had names, or one that cannot be read.",
    )

    @strawberry.field(
        description="What its last verification found (the file read whole); null until it is first verified."
    )
    async def verification(
        self, info: Info
    ) -> Annotated[Verification, strawberry.lazy("server.api.types.restore_point")] | None:
        from server.api.types.restore_point import verification_of

        return await verification_of(info, VerifiedKind.LOCAL_COPY, str(self.id))

    @strawberry.field(description="The restore point the copy holds; null when it is not in the database.")
    async def restore_point(
        self, info: Info
    ) -> Annotated[RestorePoint, strawberry.lazy("server.api.types.restore_point")] | None:
        from server.api.types.restore_point import RestorePoint

        if self.restore_point_id is None:
            return None
        point = await info.context.loaders.restore_points.load(str(self.restore_point_id))
        return RestorePoint.from_domain(point) if point else None

    @strawberry.field(
        description="What is directly inside a folder of the copy, read from the copy itself (an encrypted one "
        "decrypted as far as its manifest), without importing it: as RestorePoint.items gives it (by source "
        "and path; rowCount is null, a copy keeps none). A copy encrypted to no key this server holds is "
        "KEY_MISSING, a damaged one INVALID_ARCHIVE; the rest as RestorePoint.items."
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
            lambda: browser.local_copy(str(self.id)),
            source=source,
            path=path,
            first=first,
            after=after,
        )

    @strawberry.field(
        description="The sources the copy holds entries of, sorted, read from the copy itself as `items` is "
        "(KEY_MISSING, INVALID_ARCHIVE as there)."
    )
    async def sources(self, info: Info) -> list[str]:
        browser = info.context.services.item_browser
        try:
            view = await browser.local_copy(str(self.id))
            return await view.sources()
        except DomainError as error:
            raise to_client_error(error) from None

    @classmethod
    def from_domain(cls, copy: models.LocalCopy) -> LocalCopy:
        return cls(
            id=strawberry.ID(copy.id),
            file_name=copy.file_name,
            path=copy.path,
            size_bytes=ByteCount(copy.size),
            modified_at=copy.modified_at,
            restore_point_id=strawberry.ID(copy.restore_point_id) if copy.restore_point_id else None,
            problem=copy.problem,
            encrypted=copy.encrypted,
            server_name=copy.server_name,
        )


@strawberry.type(description="A link that downloads a local copy without credentials until it expires.")
class SignedUrl:
    url: str
    expires_at: datetime
