"""The pure parts of access control: the permissions table, token formats, parsing."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from datetime import timedelta

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from server.api.context import ANONYMOUS, Actor, Context
from server.api.http.auth import bearer_token, connection_token
from server.api.permissions import MINIMUM_ROLE, UnclassifiedFieldError, protect, root_field_names
from server.api.schema import schema, schema_text
from server.config.environment import ServerConfig
from server.model.access.tokens import Role, clean_name, hash_secret, new_secret, parse_duration
from server.model.errors import InvalidInput


def test_every_root_field_has_a_minimum_role() -> None:
    """A Query, Mutation or Subscription field without an entry in server/api/permissions.py
    MINIMUM_ROLE fails here (and build_schema refuses to build): classify it there."""
    unclassified = sorted(set(root_field_names(schema)) - set(MINIMUM_ROLE))
    assert unclassified == [], f"give these a role in server/api/permissions.py MINIMUM_ROLE: {unclassified}"


def test_the_schema_file_shows_each_root_fields_role() -> None:
    sdl = schema_text()
    for key in root_field_names(schema):
        root, field = key.split(".")
        block = re.search(rf"^type {root} {{\n(.*?)^}}", sdl, re.MULTILINE | re.DOTALL)
        assert block is not None
        line = re.search(rf"^  {field}\b.*$", block[1], re.MULTILINE)
        assert line is not None, key
        assert line[0].endswith(f"@requiresRole(role: {MINIMUM_ROLE[key].name})"), line[0]


def test_the_table_names_only_roles_and_root_types() -> None:
    assert all(key.split(".")[0] in ("Query", "Mutation", "Subscription") for key in MINIMUM_ROLE)
    assert all(isinstance(role, Role) for role in MINIMUM_ROLE.values())


def test_an_unclassified_root_field_is_refused() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def secret_field(self) -> str:
            return "x"

    with pytest.raises(UnclassifiedFieldError, match="Query.secretField"):
        protect(Query, StrawberryConfig().name_converter)


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.covers(Role.OPERATOR) and Role.OPERATOR.covers(Role.VIEWER)
    assert Role.VIEWER.covers(Role.VIEWER)
    assert not Role.VIEWER.covers(Role.OPERATOR) and not Role.OPERATOR.covers(Role.ADMIN)


def test_secrets_are_long_random_and_recognisable() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    assert all(re.fullmatch(r"bk_[A-Za-z0-9_-]{43}", s) for s in secrets)
    secret = next(iter(secrets))
    assert re.fullmatch(r"[0-9a-f]{64}", hash_secret(secret)) and hash_secret(secret) == hash_secret(secret)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer bk_abc", "bk_abc"),
        ("bearer bk_abc", "bk_abc"),
        ("BEARER   bk_abc  ", "bk_abc"),
        ("Bearer", None),
        ("Basic dXNlcjpwYXNz", None),
        ("bk_abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(value: str | None, expected: str | None) -> None:
    assert bearer_token(value) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"authorization": "Bearer bk_a"}, "bk_a"),
        ({"Authorization": "Bearer bk_a"}, "bk_a"),
        ({"token": "bk_a"}, "bk_a"),
        ({"token": " bk_a "}, "bk_a"),
        ({"authorization": "bk_a"}, None),
        ({"token": 5}, None),
        ({"token": ""}, None),
        ({}, None),
        (None, None),
        (["token", "bk_a"], None),
    ],
)
def test_connection_token(params: object, expected: str | None) -> None:
    assert connection_token(params) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "1y", "-5d", "0s", "1.5h", "30 days", "9999999d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


@pytest.mark.parametrize("name", ["ci", "nightly-backup", "ops@example.com", "a.b_c-d", "A" * 64])
def test_token_names(name: str) -> None:
    assert clean_name(name) == name


@pytest.mark.parametrize("name", ["", " ", "-lead", "has space", "tok_abc", "A" * 65, "naïve", "a/b"])
def test_bad_token_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        clean_name(name)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert ServerConfig(host=host).binds_loopback_only is loopback


@strawberry.type
class _Query:
    @strawberry.field
    async def open_field(self) -> str:
        return "open"


@strawberry.type
class _Subscription:
    @strawberry.subscription
    async def admin_stream(self) -> AsyncGenerator[int, None]:
        yield 1


def _context(role: Role | None) -> Context:
    actor = Actor(name="t", role=role, token_id="tok_x") if role else ANONYMOUS
    return Context(services=None, config=ServerConfig(), actor=actor)  # type: ignore[arg-type]


async def test_a_subscription_is_refused_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """FORBIDDEN for a subscription comes at subscribe time, before its generator runs."""
    monkeypatch.setitem(MINIMUM_ROLE, "Query.openField", Role.VIEWER)
    monkeypatch.setitem(MINIMUM_ROLE, "Subscription.adminStream", Role.ADMIN)
    names = StrawberryConfig().name_converter
    test_schema = strawberry.Schema(query=protect(_Query, names), subscription=protect(_Subscription, names))

    async def first(role: Role | None) -> tuple[object, list[str]]:
        stream = await test_schema.subscribe("subscription { adminStream }", context_value=_context(role))
        async for result in stream:  # type: ignore[union-attr]
            return result.data, [e.extensions["code"] for e in result.errors or []]
        raise AssertionError("no result")

    assert await first(Role.OPERATOR) == (None, ["FORBIDDEN"])
    assert await first(None) == (None, ["UNAUTHENTICATED"])
    assert await first(Role.ADMIN) == ({"adminStream": 1}, [])
