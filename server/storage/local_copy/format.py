"""The local copy format (version 1): a plain ZIP with `manifest.json` first.

This module is the public face; the work lives in three modules:
- local_copy_manifest: limits, entry rules, manifest.json encoding and checked parsing;
- local_copy_writer:   `write_local_copy`, atomic and cancellable;
- local_copy_reader:   `read_manifest` (cheap, for listings), `verify_local_copy` (reads all),
                       `open_local_copy` (verify, then stream members into the content store).

All of it is blocking file I/O; callers run it in a worker thread. See docs/local-copy-format.md.

Typical import:

    with open_local_copy(path) as copy:
        copy.verify(on_bytes=progress, should_stop=cancelled)
        for entry in copy.manifest.entries:
            if entry.kind is not EntryKind.DIRECTORY:
                with copy.open_member(entry) as stream:
                    digest, size, _ = store.put_stream(stream)
"""

from __future__ import annotations

from server.storage.local_copy.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    ArchiveLimits,
    ContentMismatch,
    CopyCancelled,
    LocalCopyManifest,
    member_name,
)
from server.storage.local_copy.reader import (
    LocalCopyReader,
    open_local_copy,
    read_manifest,
    verify_local_copy,
)
from server.storage.local_copy.writer import write_local_copy

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ArchiveLimits",
    "ContentMismatch",
    "CopyCancelled",
    "LocalCopyManifest",
    "LocalCopyReader",
    "member_name",
    "open_local_copy",
    "read_manifest",
    "verify_local_copy",
    "write_local_copy",
]
