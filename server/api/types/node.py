"""The Relay Node interface: every object with an id can be fetched again by it."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a globally unique id; see Query.node.")
class Node:
    id: strawberry.ID
