"""Download links: a signed URL that fetches a local copy (served by server/web/download.py), or
one item of a restore point (server/web/item_download.py), without credentials until it expires."""

from __future__ import annotations

from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.errors import UserError, attempt
from server.api.types.local_copy import SignedUrl


@strawberry.type
class SignedUrlPayload:
    signed_url: SignedUrl | None
    user_errors: list[UserError]


@strawberry.type
class DownloadMutations:
    @strawberry.mutation(
        description="A signed link that downloads the copy without credentials until it expires. "
        "It opens only this version of the file: once deleted or replaced, the link is dead."
    )
    async def create_download_url(
        self, info: Info, local_copy_id: strawberry.ID, expires_in_seconds: int | None = 300
    ) -> SignedUrlPayload:
        services = info.context.services

        async def sign() -> SignedUrl:
            copy = await services.local_copies.require(str(local_copy_id))
            token, expires_at = services.downloads.sign(copy, 300 if expires_in_seconds is None else expires_in_seconds)
            return SignedUrl(url=info.context.link(f"/download/{token}"), expires_at=expires_at)

        signed, errors = await attempt(sign)
        return SignedUrlPayload(signed_url=signed, user_errors=errors)

    @strawberry.mutation(
        description="A signed link that downloads one item without credentials until it expires: a file (or "
        "a link's target) as its bytes, a folder as a ZIP of it (a source's top level with path \"\"), a "
        "settings module as its JSON document, a table as CSV with a header row. Give exactly one of "
        "restorePointId and localCopyId; `path` as `items` gives it (a table by its name)."
    )
    async def create_item_download_url(
        self,
        info: Info,
        # Named apart in Python: Strawberry's extensions take the parent object as `source`.
        source_name: Annotated[str, strawberry.argument(name="source")],
        path: str,
        restore_point_id: strawberry.ID | None = None,
        local_copy_id: strawberry.ID | None = None,
        expires_in_seconds: int | None = 300,
    ) -> SignedUrlPayload:
        services = info.context.services

        async def sign() -> SignedUrl:
            link = await services.item_downloads.locate(
                restore_point_id=None if restore_point_id is None else str(restore_point_id),
                local_copy_id=None if local_copy_id is None else str(local_copy_id),
                source=source_name,
                path=path,
            )
            token, expires_at = services.downloads.sign_item(
                link, 300 if expires_in_seconds is None else expires_in_seconds
            )
            return SignedUrl(url=info.context.link(f"/download/item/{token}"), expires_at=expires_at)

        signed, errors = await attempt(sign)
        return SignedUrlPayload(signed_url=signed, user_errors=errors)
