"""The start-up steps run in the order server/startup.py's docstring states; the test seams
are apart from the user's config."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from server import startup
from server.config.environment import ServerConfig, SettingsError
from server.test_seams import TestSeams, load_test_seams

STEPS = [
    "migrate",
    "clear_leftovers",
    "load_blob_index",
    "seed_settings",
    "resume_operations",
    "collect_garbage",
    "first_admin_token",
    "start_scheduler",
    "start_notifications",
    "abort_unfinished_uploads",
]


def test_the_docstring_states_the_order() -> None:
    stated = re.findall(r"^\d+\. `(\w+)`", startup.__doc__ or "", re.M)
    assert stated == STEPS


async def test_start_up_runs_the_steps_in_that_order(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    for name in STEPS:
        sync = name in ("start_scheduler", "abort_unfinished_uploads")

        def sync_step(*_: Any, _name: str = name) -> None:
            ran.append(_name)

        async def async_step(*_: Any, _name: str = name) -> None:
            ran.append(_name)

        monkeypatch.setattr(startup, name, sync_step if sync else async_step)
    services = SimpleNamespace(
        settings=None,
        apply=None,
        sources=SimpleNamespace(sources=()),
        access=None,
        scheduler=None,
        notifications=None,
    )
    services.locations = None
    built = SimpleNamespace(services=services, runner=None, db=None, store=None, keeper=None, journal=None)
    await startup.start_up(built, ServerConfig(), on_first_token=lambda *_: None)  # type: ignore[arg-type]
    assert ran == STEPS


def test_the_test_seams_are_not_in_the_server_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not [name for name in ServerConfig.model_fields if name.startswith("test")]
    monkeypatch.setenv("BACKUPS_TEST_ENTRY_DELAY", "0.5")
    monkeypatch.setenv("BACKUPS_TEST_PAUSE_AT", "safety")
    seams = load_test_seams()
    assert (seams.entry_delay, seams.steps.pause_at, seams.steps.fail_at) == (0.5, "safety", None)
    assert TestSeams.off().entry_delay == 0.0  # off whatever the environment holds
    monkeypatch.setenv("BACKUPS_TEST_PACK_PAUSE_AFTER_APPENDS", "0")
    with pytest.raises(SettingsError, match=r"^BACKUPS_TEST_PACK_PAUSE_AFTER_APPENDS='0' is not accepted"):
        load_test_seams()
