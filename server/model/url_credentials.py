"""URLs with credentials in them (`http://user:password@host/`): found and masked in text."""

from __future__ import annotations

import re

# scheme://userinfo@ : the userinfo may hold anything but the characters that end an
# authority (a slash, whitespace, quotes, brackets), so a message's other text stays as it is.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@'\"<>()\[\]]+)@")
MASK = "***"


def mask_url_credentials(text: str) -> str:
    """The text with the user and password of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
