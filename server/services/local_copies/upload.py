"""Uploading a copy into the local copies folder: it is checked in full (an encrypted one
decrypted to check it) before it takes a name, and nothing stays if it fails."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from server.model.errors import InvalidArchive, InvalidInput
from server.model.records import LocalCopy
from server.services.local_copies.encryption import CopyEncryption
from server.storage.durability import atomic_write
from server.storage.encryption import MAGIC, KeyMissing
from server.storage.full import files_full
from server.storage.local_copy.folder import LocalCopyFolder, slug, split_copy_name

COPY_CHUNK = 1024 * 1024


class CopyUpload:
    """Takes uploaded copies into the local copies folder."""

    def __init__(self, *, folder: LocalCopyFolder, encryption: CopyEncryption, max_upload_bytes: int) -> None:
        self._folder = folder
        self._encryption = encryption
        self._max_upload_bytes = max_upload_bytes

    async def upload(self, stream: BinaryIO, file_name: str | None) -> LocalCopy:
        """Check an uploaded copy in full, then move it into the folder; nothing stays if it fails."""
        try:
            return await asyncio.to_thread(self._upload, stream, file_name)
        except OSError as error:
            if (full := files_full(error, f"the local copies folder ({self._folder.root})")) is not None:
                full.field = "file"
                raise full from None
            raise

    def _upload(self, stream: BinaryIO, file_name: str | None) -> LocalCopy:
        root = self._folder.root
        try:
            # The final name is known only once the copy is checked: it is set before the rename.
            with atomic_write(root / "upload") as pending:
                size = 0
                while chunk := stream.read(COPY_CHUNK):
                    size += len(chunk)
                    if size > self._max_upload_bytes:
                        raise InvalidInput(
                            f"the upload is larger than the {self._max_upload_bytes} byte limit", field="file"
                        )
                    pending.file.write(chunk)
                pending.sync()
                encrypted = _starts_with_age(pending.temp)
                manifest = self._encryption.verify_copy(pending.temp, encrypted=encrypted)
                meta = manifest.restore_point
                name = _upload_name(file_name, encrypted) or self._folder.new_name(
                    meta["createdAt"],
                    str(meta["label"]),
                    str(meta["id"]),
                    encrypted=encrypted,
                    server_name=manifest.server_name,  # the server that made it, not this one
                )
                os.chmod(pending.temp, 0o600)
                name = self._folder.place(pending.temp, name)  # exclusively: never over another copy
                pending.placed_at(root / name)
                # The file as named now (giving it its name changed its ctime), deleted since or not.
                stat = os.fstat(pending.file.fileno())
        except InvalidArchive as error:
            raise InvalidArchive(error.message, field="file") from None
        except KeyMissing as error:
            raise InvalidArchive(f"the copy is {error.message}", field="file") from None
        # Not looked up again: a delete may already have removed it, and the upload still succeeded.
        return self._folder.placed(name, stat, str(meta["id"]), manifest.server_name)


def _upload_name(file_name: str | None, encrypted: bool = False) -> str | None:
    if not file_name:
        return None
    # Some clients percent-encode the multipart filename; a name never needs a literal '%XX'.
    base = Path(unquote(file_name).replace("\\", "/")).name
    stem, ending = split_copy_name(base)
    if not ending:
        return None
    # The ending says what the file is (the age tool and people go by it), whatever it was called.
    return f"{slug(stem, limit=80)}.zip" + (".age" if encrypted else "")


def _starts_with_age(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC
