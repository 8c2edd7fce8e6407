"""A masked (unexpected) error leaves as extensions.code INTERNAL, in a query and in a subscription event."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from server.api.errors import should_mask
from server.api.schema import QuickMaskErrors


@strawberry.type
class Query:
    @strawberry.field
    def broken(self) -> int:
        raise RuntimeError("/srv/secret/path is gone")


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def broken_events(self) -> AsyncGenerator[int, None]:
        yield 1
        raise RuntimeError("/srv/secret/path is gone")


SCHEMA = strawberry.Schema(
    Query, subscription=Subscription, extensions=[lambda: QuickMaskErrors(should_mask_error=should_mask)]
)


async def test_a_masked_error_in_a_query_is_internal() -> None:
    result = await SCHEMA.execute("{ broken }")
    assert [(e.message, e.extensions) for e in result.errors] == [("Unexpected error.", {"code": "INTERNAL"})]


async def test_a_masked_error_in_a_subscription_is_internal() -> None:
    stream = await SCHEMA.subscribe("subscription { brokenEvents }")
    results = [result async for result in stream]  # type: ignore[union-attr]
    assert results[0].data == {"brokenEvents": 1}
    assert [(e.message, e.extensions) for e in results[-1].errors] == [("Unexpected error.", {"code": "INTERNAL"})]
