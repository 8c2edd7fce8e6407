"""The Relay Node interface: every object with an id can be fetched again by it; and what
deleting one answers (every feature's delete mutation)."""

from __future__ import annotations

import strawberry

from server.api.errors import UserError


@strawberry.interface(description="An object with a globally unique id; see Query.node.")
class Node:
    id: strawberry.ID


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]
