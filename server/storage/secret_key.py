"""The key download links are signed with: a file in the data folder, made once."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from server.storage.durability import write_atomic


def load_or_create_secret(data_dir: Path) -> str:
    """The signing key kept in the data dir (mode 0600), made once on first use."""
    path = data_dir / "secret.key"
    if not path.exists():
        # Written whole before it is linked into place: a crash never leaves an empty key,
        # and of two servers starting at once the first one's key wins.
        with contextlib.suppress(FileExistsError):
            write_atomic(path, secrets.token_urlsafe(48).encode(), exclusive=True)
    return path.read_text().strip()
