"""docs/notifications.md: every config example parses as the server parses it (each URL through
Apprise), the URL file's example too, and the refusal it shows is the one the server prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config.config_file import ConfigError, load_config_file
from server.config.notifications_file import parse_apprise_url
from server.model.notifications import NotificationEvent
from tests.docs.markdown_blocks import DOCS, blocks

PAGE = DOCS / "notifications.md"
SITE = '[[sources]]\nname = "settings"\nkind = "settings"\n'
EXAMPLES = [block for block in blocks(PAGE) if block.lang == "toml"]


def test_the_chapter_shows_ntfy_a_webhook_and_email() -> None:
    assert {block.title for block in EXAMPLES} >= {"ntfy", "JSON webhook", "email"}


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda block: block.title or block.where())
def test_each_example_is_a_target_the_server_takes(block: object, tmp_path: Path) -> None:
    text = block.text  # type: ignore[attr-defined]
    url_file = next(b for b in blocks(PAGE) if b.title == "/etc/backups/mail.url").text.strip()
    (tmp_path / "mail.url").write_text(url_file + "\n")
    config = tmp_path / "backups.toml"
    config.write_text(SITE + text.replace("/etc/backups/mail.url", str(tmp_path / "mail.url")))
    (target,) = load_config_file(config).notifications
    assert parse_apprise_url(target.url) is not None
    assert "s3cret" not in target.masked_url and "abc123" not in target.masked_url


def test_the_email_url_file_sends_to_its_recipient() -> None:
    text = next(b for b in blocks(PAGE) if b.title == "/etc/backups/mail.url").text.strip()
    plugin = parse_apprise_url(text)
    assert plugin is not None and plugin.targets and "ops@example.net" in str(plugin.targets)


def test_the_refusal_shown_is_the_one_printed(tmp_path: Path) -> None:
    shown = next(b for b in blocks(PAGE) if b.lang == "text" and "backups: config file" in b.text).text.strip()
    config = tmp_path / "backups.toml"
    config.write_text(SITE + '[[notifications]]\nname = "phone"\nurl = "ntfys://ntfy.sh/t"\nevents = ["FAILED"]\n')
    with pytest.raises(ConfigError) as raised:
        load_config_file(config)
    assert f"backups: {raised.value}".replace(str(config), "/etc/backups/backups.toml") == shown


def test_the_events_table_lists_every_event() -> None:
    text = PAGE.read_text()
    assert all(f"| `{event}` |" in text for event in NotificationEvent)
