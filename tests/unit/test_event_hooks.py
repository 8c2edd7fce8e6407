"""Skipping the per-event extension hooks changes nothing a client sees."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension

from server.api.fast_path.event_hooks import EventHooksRunner
from server.api.schema import QuickMaskErrors


@strawberry.type
class Tick:
    n: int

    @strawberry.field
    def risky(self) -> int:
        if self.n == 2:
            raise RuntimeError("secret detail")
        return self.n


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Tick, None]:
        for n in range(1, 4):
            yield Tick(n=n)


class HookedSchema(strawberry.Schema):
    def create_extensions_runner(self, execution_context: Any, extensions: list[SchemaExtension]) -> EventHooksRunner:
        return EventHooksRunner(
            execution_context=execution_context, extensions=extensions, quiet_on_clean=(QuickMaskErrors,)
        )


class SeesEveryResult(SchemaExtension):
    seen: list[object] = []

    def on_stream_result(self, result: Any) -> Iterator[None]:
        SeesEveryResult.seen.append(result)
        yield


class Reports(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        return {"reported": True}


async def ticks(*extensions: Any) -> list[Any]:
    schema = HookedSchema(Query, subscription=Subscription, extensions=[*extensions, lambda: QuickMaskErrors()])
    stream = await schema.subscribe("subscription { ticks { n risky } }")
    return [result async for result in stream]  # type: ignore[union-attr]


async def test_errors_are_still_masked_and_clean_events_pass_untouched() -> None:
    results = await ticks()
    assert [r.data for r in results] == [{"ticks": {"n": 1, "risky": 1}}, None, {"ticks": {"n": 3, "risky": 3}}]
    assert [e.message for e in results[1].errors] == ["Unexpected error."]
    assert [r.errors for r in (results[0], results[2])] == [None, None]
    assert [r.extensions for r in results] == [{}, {}, {}]


async def test_an_extension_with_its_own_hooks_still_sees_every_event_and_reports() -> None:
    SeesEveryResult.seen = []
    results = await ticks(SeesEveryResult, Reports)
    assert SeesEveryResult.seen == results and len(results) == 3
    assert [r.extensions for r in results] == [{"reported": True}] * 3
    assert [e.message for e in results[1].errors] == ["Unexpected error."]
