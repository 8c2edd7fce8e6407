"""Every GraphQL block in the manual and README is valid against the schema the server serves
(read by introspection from a running server, so it is the code's schema, not a copy)."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema, build_client_schema, get_introspection_query, parse, validate

from tests.docs.markdown_blocks import ROOT, blocks, pages
from tests.support.api import execute
from tests.support.in_process import InProcessServer

GRAPHQL_PAGES = [page for page in pages() if any(block.lang == "graphql" for block in blocks(page))]


@pytest.fixture(scope="module")
async def live_schema(server: InProcessServer) -> GraphQLSchema:
    return build_client_schema(await execute(server, get_introspection_query()))  # type: ignore[arg-type]


def test_the_manual_has_graphql_blocks() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in GRAPHQL_PAGES}
    assert "docs/api/cookbook.md" in names and "README.md" in names, names


@pytest.mark.parametrize("page", GRAPHQL_PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
async def test_every_graphql_block_is_valid(page, live_schema: GraphQLSchema) -> None:
    problems = []
    for block in blocks(page):
        if block.lang != "graphql":
            continue
        try:
            document = parse(block.text)
        except Exception as error:  # a GraphQLSyntaxError, reported with where it is
            problems.append(f"{block.where()}: {error}")
            continue
        problems += [f"{block.where()}: {error.message}" for error in validate(live_schema, document)]
    assert problems == []
