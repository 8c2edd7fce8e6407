"""mask_url_credentials: a URL's user and password never reach a message (issue 23 item 11)."""

from __future__ import annotations

import pytest

from server.model.url_credentials import mask_url_credentials


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://user:pw@host/", "http://***@host/"),
        ("https://user@host:9000/bucket", "https://***@host:9000/bucket"),
        ("s3+https://AKIA:se%2Fcret@s3.example.com", "s3+https://***@s3.example.com"),
        (
            'cannot reach http://u:p@127.0.0.1:9/: Could not connect to the endpoint URL: "http://u:p@127.0.0.1:9/b?x"',
            'cannot reach http://***@127.0.0.1:9/: Could not connect to the endpoint URL: "http://***@127.0.0.1:9/b?x"',
        ),
        ("the password is p@ss at http://host/a@b", "the password is p@ss at http://host/a@b"),  # no userinfo
        ("mail admin@example.com; see https://example.com/x", "mail admin@example.com; see https://example.com/x"),
        ("no URL at all", "no URL at all"),
    ],
)
def test_userinfo_is_masked_and_nothing_else_changes(text: str, masked: str) -> None:
    assert mask_url_credentials(text) == masked
    assert mask_url_credentials(masked) == masked  # masking twice changes nothing more
