"""Download links: a signed URL that fetches a local copy without credentials until it expires
(served by server/web/download.py)."""

from __future__ import annotations

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
