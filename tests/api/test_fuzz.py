"""A bounded, deterministic schemathesis run against the live server: no 500s, no unexpected
(masked) errors, nothing internal in any error, no crash, and nothing at all without a token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.specs.graphql.scalars import CUSTOM_SCALARS

from tests.support.api import auth_headers
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("fuzz")

# Per root field and mode; about 25 s for the whole run on this project's 2-core machines.
EXAMPLES = 30
KNOWN_CODES = {
    "NOT_FOUND",
    "INVALID_INPUT",
    "BUSY",
    "CONFIRMATION_REQUIRED",
    "INVALID_ARCHIVE",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_REQUEST",
}
INTERNALS = (
    "Traceback",
    'File "',
    ".py",
    "site-packages",
    "/work/",
    "/tmp/",
    "sqlalchemy",
    "psycopg",
    "sqlite",
    "Exception",
    "Error:",
)


def json_values() -> st.SearchStrategy[graphql.ValueNode]:
    """Any JSON value as a GraphQL literal: what `values: JSON!` may be sent."""
    leaves = st.one_of(
        st.just(nodes.Null),
        st.booleans().map(nodes.Boolean),
        st.integers(-(2**53), 2**53).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.text(max_size=30).map(nodes.String),
    )
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)

    def containers(children: st.SearchStrategy[graphql.ValueNode]) -> st.SearchStrategy[graphql.ValueNode]:
        objects = st.dictionaries(names, children, max_size=4).map(
            lambda d: nodes.Object(
                [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in d.items()]
            )
        )
        return st.one_of(st.lists(children, max_size=4).map(nodes.List), objects)

    return st.recursive(leaves, containers, max_leaves=12)


def register_scalars(schema: Any) -> None:
    """Strategies for our custom scalars; any other custom scalar (one added later) gets text."""
    schemathesis.graphql.scalar("JSON", json_values())
    schemathesis.graphql.scalar("ByteCount", st.integers(-10, 2**60).map(nodes.Int))
    schemathesis.graphql.scalar(
        "DateTime", st.one_of(st.datetimes().map(lambda d: nodes.String(d.isoformat())), st.text().map(nodes.String))
    )
    for name, type_ in schema.client_schema.type_map.items():
        if (
            isinstance(type_, graphql.GraphQLScalarType)
            and name not in graphql.specified_scalar_types
            and name not in CUSTOM_SCALARS
        ):
            schemathesis.graphql.scalar(name, st.text(max_size=40).map(nodes.String))


def load_schema(proc: ServerProcess) -> Any:
    schema = schemathesis.graphql.from_url(proc.graphql_url, headers=auth_headers(proc), timeout=30)
    register_scalars(schema)
    return schema


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir=tmp_path_factory.mktemp("fuzz") / "data").start()
    yield proc
    proc.close()


def problems_in(response: Any, sent: str = "") -> list[str]:
    """What is wrong with one response: a 5xx, a non-GraphQL body, an unexpected or leaky error.
    `sent`: the request body as JSON."""
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {response.text[:300]}"]
    try:
        body = response.json()
    except ValueError:
        return [f"not JSON (HTTP {response.status_code}): {response.text[:300]}"]
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        return [f"not a GraphQL response: {response.text[:300]}"]
    found = []
    for error in body.get("errors") or []:
        message = error.get("message", "")
        code = (error.get("extensions") or {}).get("code")
        if message == "Unexpected error.":
            found.append(f"an unexpected (masked) error at {error.get('path')}")
        elif "path" in error and code not in KNOWN_CODES:
            found.append(f"an execution error without a known code: {error}")
        # A marker the request itself holds may come back in an echo of its value (Hypothesis
        # draws strings from the server's own code too, such as "sqlite+aiosqlite").
        if any(marker in json.dumps(error) and marker not in sent for marker in INTERNALS):
            found.append(f"internals in an error: {error}")
    return found


def fuzz(proc: ServerProcess, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    schema = load_schema(proc)
    found: list[str] = []

    @settings(
        max_examples=EXAMPLES * len(list(schema.get_all_operations())),
        # The same seed every run; the cases still vary with the modules the worker has imported
        # (Hypothesis also draws strings found in their code), so a finding is a real defect to
        # fix, never a flake to rerun.
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't search
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(headers=headers, timeout=30)
        found.extend(f"{case.operation.label} {case.body}: {p}" for p in problems_in(response, json.dumps(case.body)))

    run()
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_fuzz_with_an_admin_token(fuzzed: ServerProcess, mode: GenerationMode) -> None:
    # No timing assert here (it was `< 60 s`): pytest-timeout (120 s) bounds the run, and how
    # fast the server answers is the bench's (bench/bench_query.py).
    found = fuzz(fuzzed, mode, auth_headers(fuzzed))
    assert found == [], "\n".join(found[:20])
    assert httpx.get(f"{fuzzed.url}/health").status_code == 200
    assert fuzzed.process is not None and fuzzed.process.poll() is None
    assert "Traceback" not in fuzzed.log_path.read_text()


def test_fuzz_without_a_token_gets_nothing(fuzzed: ServerProcess) -> None:
    schema = load_schema(fuzzed)
    bodies: list[Any] = []

    @settings(
        max_examples=100,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy())
    def run(case: Any) -> None:
        response = case.call(timeout=30)
        bodies.append((response.status_code, response.json()))

    run()
    assert bodies and all(status == 401 for status, _ in bodies)
    assert all(
        body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        for _, body in bodies
    )
