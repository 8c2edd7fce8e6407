"""BACKUPS_FAST_EXECUTION chooses between the fast path and Strawberry's stock execution."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.api.fast_path.event_hooks import EventHooksRunner
from server.api.fast_path.fast_execution import FastLeafExecutionContext
from server.api.schema import build_schema
from server.app import BackupsGraphQL, FastBackupsGraphQL, create_app
from server.config.environment import ServerConfig


def test_the_fast_path_is_on_by_default_and_off_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, stock = build_schema(), build_schema(fast=False)
    assert fast.execution_context_class is FastLeafExecutionContext
    assert stock.execution_context_class is not FastLeafExecutionContext
    assert isinstance(fast.create_extensions_runner(None, []), EventHooksRunner)
    assert not isinstance(stock.create_extensions_runner(None, []), EventHooksRunner)
    assert str(fast) == str(stock)  # the same schema either way

    monkeypatch.delenv("BACKUPS_FAST_EXECUTION", raising=False)
    assert ServerConfig().fast_execution is True
    for off in ("0", "false", "off"):
        monkeypatch.setenv("BACKUPS_FAST_EXECUTION", off)
        assert ServerConfig().fast_execution is False

    def graphql_app(fast_execution: bool) -> object:
        app = create_app(ServerConfig(data_dir=tmp_path, auth="off", fast_execution=fast_execution))
        return next(route.app for route in app.routes if getattr(route, "path", None) == "/graphql")

    assert type(graphql_app(True)) is FastBackupsGraphQL
    assert type(graphql_app(False)) is BackupsGraphQL
