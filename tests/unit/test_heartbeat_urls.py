"""The heartbeat's URLs: the fail variant of each watcher's convention, and the masked form a
log shows."""

from __future__ import annotations

import pytest

from server.services.schedules.heartbeat import fail_url, masked_url


@pytest.mark.parametrize(
    ("url", "failed"),
    [
        ("https://hc-ping.com/0f1e2d3c", "https://hc-ping.com/0f1e2d3c/fail"),
        ("https://hc-ping.com/0f1e2d3c/", "https://hc-ping.com/0f1e2d3c/fail"),
        ("https://hc-ping.com/ping/KEY/backups?create=1", "https://hc-ping.com/ping/KEY/backups/fail?create=1"),
        (
            "http://kuma.lan:3001/api/push/Kx3?status=up&msg=OK&ping=",
            "http://kuma.lan:3001/api/push/Kx3?status=down&msg=OK&ping=",
        ),
    ],
)
def test_the_fail_variant_follows_each_watchers_convention(url: str, failed: str) -> None:
    assert fail_url(url) == failed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hc-ping.com/0f1e2d3c", "https://hc-ping.com/0f1e2d3c"),
        ("http://kuma.lan:3001/api/push/Kx3?status=up&token=s3cret", "http://kuma.lan:3001/api/push/Kx3?***"),
        ("https://user:pa55@watch.example/ping", "https://***@watch.example/ping"),
        ("https://user@watch.example:8443/ping?k=v", "https://***@watch.example:8443/ping?***"),
    ],
)
def test_a_logged_url_has_no_password_and_no_query(url: str, shown: str) -> None:
    assert masked_url(url) == shown
