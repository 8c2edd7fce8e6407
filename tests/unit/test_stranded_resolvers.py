"""A GraphQL execution cancelled midway (a websocket closed while an event was resolved) leaves
graphql-core's unstarted field coroutines, each warned about as "never awaited"
(graphql-core #269). The server keeps exactly those out of its log; any other coroutine never
awaited still warns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings

import strawberry

from server.api.schema import quiet_stranded_resolvers


@strawberry.type
class Item:
    n: int

    @strawberry.field
    async def doubled(self) -> int:
        await asyncio.sleep(0.01)
        return 2 * self.n

    @strawberry.field
    async def squared(self) -> int:
        await asyncio.sleep(0.01)
        return self.n * self.n


@strawberry.type
class Query:
    @strawberry.field
    async def items(self) -> list[Item]:
        return [Item(n=n) for n in range(5)]


SCHEMA = strawberry.Schema(query=Query)


async def cancel_midway() -> None:
    """Start `{ items { doubled squared } }` and cancel it when its fields' coroutines exist
    but have not all started: what a websocket closed mid-event does to a subscription."""
    execution = asyncio.ensure_future(SCHEMA.execute("{ items { doubled squared } }"))
    for _ in range(2):
        await asyncio.sleep(0)
    assert not execution.done()
    execution.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await execution


def never_awaited_warnings(quiet: bool) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if quiet:
            quiet_stranded_resolvers()
        asyncio.run(cancel_midway())
        gc.collect()
    return [str(w.message) for w in caught if "never awaited" in str(w.message)]


def test_a_cancelled_execution_strands_resolver_coroutines_that_python_warns_about() -> None:
    # The library behaviour the filter is for: without it, the warnings are there.
    assert never_awaited_warnings(quiet=False) != []


def test_the_server_keeps_those_warnings_out_of_its_log() -> None:
    assert never_awaited_warnings(quiet=True) == []


async def forgotten() -> None:
    """A coroutine of ours that nobody awaits: a real bug, still reported."""


def test_a_coroutine_of_ours_never_awaited_still_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_stranded_resolvers()
        forgotten()  # type: ignore[unused-coroutine]
        gc.collect()
    assert [str(w.message) for w in caught] == ["coroutine 'forgotten' was never awaited"]
