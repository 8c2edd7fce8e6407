"""The fast leaf path gives exactly what graphql-core gives, errors included."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.extensions import ParserCache
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from server.api.fast_path import shared_frames
from server.api.fast_path.fast_execution import FastLeafExecutionContext


@strawberry.enum
class Kind(enum.Enum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"


@strawberry.type
class Point:
    id: strawberry.ID
    label: str
    note: str | None
    size: int
    kind: Kind
    created_at: datetime

    @strawberry.field
    def shout(self, loud: bool = False) -> str:
        return self.label.upper() if loud else self.label


@strawberry.type
class Wrapper:
    points: list[Point]


def points() -> list[Any]:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rows: list[Any] = [
        Point(
            id=strawberry.ID(f"p{n}"),
            label=f"point {n}",
            note=None if n % 2 else "n",
            size=10**12 + n,
            kind=Kind.MANUAL if n % 3 else Kind.SCHEDULED,
            created_at=when,
        )
        for n in range(5)
    ]
    return rows


def bad_points() -> list[Any]:
    rows = points()
    rows[2] = Point(
        id=strawberry.ID("bad"),
        label=None,
        note=None,
        size=1,  # type: ignore[arg-type]
        kind=Kind.MANUAL,
        created_at=rows[0].created_at,
    )
    rows[3] = Point(
        id=strawberry.ID("worse"),
        label="x",
        note=None,
        size="many",  # type: ignore[arg-type]
        kind=Kind.MANUAL,
        created_at=rows[0].created_at,
    )
    return rows


@strawberry.type
class Query:
    @strawberry.field
    def points(self) -> list[Point]:
        return points()

    @strawberry.field
    async def later(self) -> list[Point]:
        return points()

    @strawberry.field
    def bad(self) -> list[Point]:
        return bad_points()

    @strawberry.field
    def wrapped(self) -> Wrapper:
        return Wrapper(points=points())


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    fast = strawberry.Schema(Query, execution_context_class=FastLeafExecutionContext)
    stock = strawberry.Schema(Query, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    return fast, stock


QUERIES = [
    "{ points { id label note size kind createdAt } }",
    "{ later { id label note size kind createdAt } }",
    "{ points { __typename first: label again: label label } }",
    "{ points { id label @include(if: false) note @skip(if: true) size } }",
    "{ points { id shout(loud: true) } }",
    "{ points { id shout } }",
    "{ wrapped { points { id kind } } }",
    "{ points { ...P } } fragment P on Point { id label }",
    "{ bad { id label } }",
    "{ bad { id size } }",
    "{ bad { id note } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_same_result_as_graphql_core(query: str) -> None:
    fast, stock = schemas()
    ours = await fast.execute(query)
    theirs = await stock.execute(query)
    assert ours.data == theirs.data
    assert [(e.message, e.path) for e in ours.errors or []] == [(e.message, e.path) for e in theirs.errors or []]


async def test_the_fast_path_is_taken_for_leaf_selections() -> None:
    calls: list[str] = []

    class Counting(FastLeafExecutionContext):
        def execute_field(self, parent_type, source, details, path, position):  # type: ignore[no-untyped-def]
            calls.append(f"{parent_type.name}.{details[0].node.name.value}")
            return super().execute_field(parent_type, source, details, path, position)

    schema = strawberry.Schema(Query, execution_context_class=Counting)
    result = await schema.execute("{ points { id label kind createdAt } }")
    assert not result.errors and len(result.data["points"]) == 5  # type: ignore[index]
    assert calls == ["Query.points"]  # no per-row field went through graphql-core


@strawberry.type
class Feed:
    @strawberry.subscription
    async def points(self) -> Point:
        for point in SHARED_POINTS:
            yield point


SHARED_POINTS = points()


async def events(schema: strawberry.Schema, query: str) -> list[Any]:
    stream = await schema.subscribe(query)
    return [result async for result in stream]  # type: ignore[union-attr]


class CountingEvents(FastLeafExecutionContext):
    executed: list[int] = []

    def execute_fields(self, parent_type, source, path, fields, position):  # type: ignore[no-untyped-def]
        if path is None:  # the root of an event: only runs when the event is executed
            CountingEvents.executed.append(1)
        return super().execute_fields(parent_type, source, path, fields, position)


def counting_schema() -> strawberry.Schema:
    CountingEvents.executed = []
    return strawberry.Schema(Query, subscription=Feed, execution_context_class=CountingEvents, extensions=[ParserCache])


async def test_subscribers_of_the_same_stream_share_each_event_result() -> None:
    schema = counting_schema()
    query = "subscription { points { id label kind } }"
    first, second = await events(schema, query), await events(schema, query)
    assert [r.data for r in first] == [r.data for r in second] and len(first) == 5
    assert len(CountingEvents.executed) == 5  # each event executed once, for both subscribers
    stock = strawberry.Schema(Query, subscription=Feed, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    assert [r.data for r in await events(stock, query)] == [r.data for r in first]


async def test_events_whose_fields_run_resolvers_are_not_shared() -> None:
    schema = counting_schema()
    query = "subscription { points { id shout } }"  # a resolver could look at who is asking
    first, second = await events(schema, query), await events(schema, query)
    assert [r.data for r in first] == [r.data for r in second]
    assert len(CountingEvents.executed) == 10


async def test_a_list_of_plain_objects_is_completed_in_one_step() -> None:
    completed: list[str] = []

    class Counting(FastLeafExecutionContext):
        def complete_object_value(self, return_type, *args):  # type: ignore[no-untyped-def]
            completed.append(return_type.name)
            return super().complete_object_value(return_type, *args)

    schema = strawberry.Schema(Query, execution_context_class=Counting)
    result = await schema.execute("{ points { id label kind createdAt } wrapped { points { id } } }")
    assert not result.errors and len(result.data["points"]) == 5  # type: ignore[index]
    assert completed == ["Wrapper"]  # no row went through graphql-core one by one


class Caller:
    def __init__(self, role: str) -> None:
        self.actor = type("Actor", (), {"role": role})()


async def events_as(schema: strawberry.Schema, query: str, role: str) -> list[Any]:
    stream = await schema.subscribe(query, context_value=Caller(role))
    return [result async for result in stream]  # type: ignore[union-attr]


async def test_subscribers_with_another_role_or_document_get_results_of_their_own() -> None:
    schema = counting_schema()
    query = "subscription { points { id label kind } }"
    viewer, admin = await events_as(schema, query, "viewer"), await events_as(schema, query, "admin")
    other = await events_as(schema, "subscription { points { id note } }", "viewer")
    assert len(CountingEvents.executed) == 15  # five events for each role and each document
    assert [r.data for r in viewer] == [r.data for r in admin]
    assert all(a.data is not v.data for a, v in zip(admin, viewer, strict=True))
    assert [r.data["points"] for r in other] == [{"id": p.id, "note": p.note} for p in SHARED_POINTS]
    again = await events_as(schema, query, "viewer")
    assert len(CountingEvents.executed) == 15 and all(a.data is v.data for a, v in zip(again, viewer, strict=True))


async def test_a_shared_result_is_marked_for_encoding_once() -> None:
    schema = counting_schema()
    query = "subscription { points { id label } }"
    first, second = await events_as(schema, query, "viewer"), await events_as(schema, query, "viewer")
    for one, two in zip(first, second, strict=True):
        assert one.data is two.data
        frame = shared_frames.next_frame({"id": "9", "type": "next", "payload": {"data": one.data}}, _encode)
        assert frame is not None and json.loads(frame)["payload"]["data"] == one.data


def _encode(value: object) -> str:
    return json.dumps(value)
