"""The built-in settings store: seeded modules, merge updates, and their errors."""

from __future__ import annotations

from tests.support.api import execute, update_settings
from tests.support.server_process import ServerProcess


async def test_modules_are_seeded(server: ServerProcess) -> None:
    modules = (await execute(server, "{ modules { name settings updatedAt } }"))["modules"]
    names = {m["name"] for m in modules}
    assert {"setup", "displays", "audio", "schedules", "network"} <= names
    assert all(isinstance(m["settings"], dict) and m["settings"] for m in modules)


async def test_update_merges_into_the_document(server: ServerProcess) -> None:
    payload = await update_settings(
        server, "lighting", {"universe": 7, "scenes": {"show": [1, 2, 3], "night": [0, 0, 10]}, "protocol": None}
    )
    assert payload["userErrors"] == []
    settings = payload["module"]["settings"]
    assert settings["universe"] == 7
    assert settings["scenes"]["show"] == [1, 2, 3]
    assert settings["scenes"]["night"] == [0, 0, 10]
    assert settings["scenes"]["welcome"] == [255, 200, 120]  # untouched keys stay
    assert "protocol" not in settings  # null removes a key (RFC 7386)
    stored = (await execute(server, "{ modules { name settings } }"))["modules"]
    assert next(m for m in stored if m["name"] == "lighting")["settings"] == settings


async def test_update_refuses_a_non_object_and_changes_nothing(server: ServerProcess) -> None:
    before = (await execute(server, "{ modules { name settings updatedAt } }"))["modules"]
    for values in ([1, 2], "text", 5, None if False else True):
        payload = await update_settings(server, "audio", values)
        assert payload["module"] is None
        assert payload["userErrors"] == [
            {"code": "INVALID_INPUT", "field": "values", "message": "values must be a JSON object"}
        ]
    assert (await execute(server, "{ modules { name settings updatedAt } }"))["modules"] == before


async def test_update_of_unknown_module_is_not_found(server: ServerProcess) -> None:
    payload = await update_settings(server, "nosuchmodule", {"a": 1})
    assert payload["module"] is None
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"
    assert payload["userErrors"][0]["field"] == "module"
    names = {m["name"] for m in (await execute(server, "{ modules { name } }"))["modules"]}
    assert "nosuchmodule" not in names
