"""`[[notifications]]` in the config file: targets parse, every bad one is one line naming the
target and the problem (never the URL's secrets), and shown URLs are masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config.config_file import ConfigError, load_config_file
from server.config.file_models import NotificationEntry
from server.config.notifications_file import masked_url
from server.model.notifications import NotificationEvent

SITE = "[[sources]]\nname = 's'\nkind = 'settings'\n"
SECRET = "pa55-w0rd-xyz"


def target(**keys: object) -> str:
    lines = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in keys.items())
    return SITE + "[[notifications]]\n" + lines


def load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "backups.toml"
    path.write_text(body)
    return load_config_file(path)


def error_of(tmp_path: Path, body: str) -> str:
    path = tmp_path / "backups.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    text = str(raised.value)
    assert text.startswith(f"config file {path}: ") and "\n" not in text, text
    assert SECRET not in text
    return text.removeprefix(f"config file {path}: ")


def test_targets_parse_with_their_events_and_masked_urls(tmp_path: Path) -> None:
    (tmp_path / "url.txt").write_text(f"ntfys://bob:{SECRET}@ntfy.example.com/backups\n")
    body = (
        target(name="hook", url=f"json://user:{SECRET}@127.0.0.1:8080/hook", events=["OPERATION_FAILED"])
        + "[[notifications]]\nname = 'phone'\nurl_file = 'url.txt'\n"
    )
    hook, phone = load(tmp_path, body).notifications  # type: ignore[attr-defined]
    assert hook.name == "hook" and hook.events == (NotificationEvent.OPERATION_FAILED,)
    assert hook.url == f"json://user:{SECRET}@127.0.0.1:8080/hook"
    assert hook.masked_url == "json://user:****@127.0.0.1:8080/hook"
    assert phone.url.startswith("ntfys://bob:") and phone.events == tuple(NotificationEvent)
    assert phone.masked_url == "ntfys://bob:****@ntfy.example.com/backups"
    assert SECRET not in repr(hook) and SECRET not in repr(phone)


def test_no_targets_without_the_section(tmp_path: Path) -> None:
    assert load(tmp_path, SITE).notifications == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            target(name="t", url=f"nonsense://user:{SECRET}@host/"),
            "notification 't': url is not an Apprise URL that can be used (nonsense://...)",
        ),
        (target(name="t", url=f"json://{SECRET} x"), "notification 't': url is not an Apprise URL"),
        (
            target(name="t", url="json://h/", events=["OPERATION_FAILED", "DISK_ON_FIRE"]),
            "notification 't': unknown event 'DISK_ON_FIRE' in events (known: OPERATION_FAILED, HEALTH_CHANGED",
        ),
        (target(name="t", url="json://h/", events=[]), "notification 't': events is empty"),
        (target(name="t", url="json://h/", events="OPERATION_FAILED"), "notification 't': events must be a list"),
        (target(name="t"), "notification 't': give the Apprise URL as url or as url_file"),
        (
            target(name="t", url="json://h/", url_file="u.txt"),
            "notification 't': give the Apprise URL as url or as url_file",
        ),
        (
            target(name="t", url="json://h/") + "[[notifications]]\nname = 't'\nurl = 'json://g/'\n",
            "notification 't': the name is used twice",
        ),
        (target(name="T!", url="json://h/"), "notification 'T!': name must be 1 to 64 of"),
        (
            target(name="t", url="json://h/", event=["X"]),
            "notification 't': unknown key 'event' for a notification (allowed: events, name, url, url_file)",
        ),
        (target(name="t", url=3), "notification 't': url must be an Apprise URL"),
        (target(name="t", url_file="missing.txt"), "notification 't': url_file "),
        ("notifications = 3\n" + SITE, "notifications must be [[notifications]] tables"),
        (
            SITE + "[notify]\n",
            "unknown top-level key 'notify' (allowed: [[sources]], [[locations]], [encryption], [[notifications]])",
        ),
    ],
)
def test_each_bad_target_is_one_line_naming_it_and_the_problem(tmp_path: Path, body: str, message: str) -> None:
    assert error_of(tmp_path, body).startswith(message)


def test_a_url_file_holding_no_usable_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    (tmp_path / "url.txt").write_text(f"bogus://{SECRET}@x/\n")
    message = error_of(tmp_path, target(name="t", url_file="url.txt"))
    assert message.startswith("notification 't': url_file ") and "does not hold an Apprise URL" in message


def test_every_key_has_its_own_line() -> None:
    assert set(NotificationEntry.model_fields) <= set(NotificationEntry.EXPECTS)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"json://127.0.0.1:9/hook?+Authorization=Bearer%20{SECRET}", "json://127.0.0.1:9/hook?+Authorization=****"),
        (f"json://h/p?-apikey={SECRET}&method=PUT", "json://h/p?method=PUT&-apikey=****"),
        (
            f"mailtos://user:{SECRET}@example.com?smtp=mail.example.com",
            "mailtos://user:****@example.com/?smtp=mail.example.com",
        ),
        (f"ntfy://user:{SECRET}@host/topic?priority=high", "ntfy://user:****@host/topic?priority=high"),
    ],
)
def test_masked_urls_hold_no_secret(url: str, shown: str) -> None:
    assert masked_url(url) == shown
