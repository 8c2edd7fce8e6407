"""The region "Notifications" in a real Chromium: each target of the config file with its URL
(the password masked), its events, its last delivery and error, and "Send test" saying whether
the message arrived: to a real JSON webhook on loopback, and to a port that refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import AXE, expect, scan
from tests.support.in_process import InProcessServer
from tests.support.notify_receiver import Receiver
from tests.support.server_process import free_port

pytestmark = pytest.mark.slow

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, built_page: None) -> Iterator[InProcessServer]:
    root = tmp_path_factory.mktemp("notify-page")
    (root / "site").mkdir()
    config = root / "backups.toml"
    config.write_text(
        f'[[sources]]\nname = "site"\nkind = "folder"\npath = "{root / "site"}"\n\n'
        f'[[notifications]]\nname = "ops-webhook"\nurl = "{receiver.url(userinfo=f"ops:{SECRET}")}"\n'
        'events = ["OPERATION_FAILED", "APPLY_FINISHED"]\n\n'
        f'[[notifications]]\nname = "nobody-home"\nurl = "json://127.0.0.1:{free_port()}/hook"\n'
    )
    proc = InProcessServer(
        data_dir=root / "data",
        env_overrides={"BACKUPS_CONFIG": str(config), "BACKUPS_NOTIFY_TIMEOUT_SECONDS": "5"},
    ).start()
    yield proc
    proc.close()


def test_targets_are_listed_and_a_test_message_says_whether_it_arrived(open_page, site, receiver) -> None:
    page = open_page()
    page.sign_in(site.token)
    region = page.region("Notifications")
    webhook = region.get_by_role("listitem", name="Notification target ops-webhook")
    expect(webhook).to_contain_text("operation failed, apply finished")
    expect(webhook).to_contain_text("Nothing delivered yet")
    assert SECRET not in page.page.content()  # masked by the server

    webhook.get_by_role("button", name="Send test").click()
    expect(webhook.get_by_role("status")).to_have_text("Delivered.", timeout=30_000)
    expect(webhook).to_contain_text("Last delivered")
    assert any("test notification" in message.get("title", "") for message in receiver.messages)

    refused = region.get_by_role("listitem", name="Notification target nobody-home")
    expect(refused).to_contain_text("operation failed")  # no events given: every event
    refused.get_by_role("button", name="Send test").click()
    expect(refused.get_by_role("status")).to_contain_text("Not delivered", timeout=30_000)
    expect(refused).to_contain_text("Last error")
    if AXE.is_file():
        assert scan(page) == []
    page.shot("notifications", full_page=False)
