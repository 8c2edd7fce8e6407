"""StorageUsage: what the backups take on disk now."""

from __future__ import annotations

import strawberry

from server.api.scalars import ByteCount
from server.services.storage_usage import StorageUsage as StorageUsage_


@strawberry.type(description="What the backups take on disk now, read from the disk (not from recorded sizes).")
class StorageUsage:
    stored_bytes: ByteCount = strawberry.field(
        description="Bytes of the content store: what every restore point holds, shared content counted once."
    )
    blob_count: int = strawberry.field(description="Distinct pieces of content in the store.")
    restore_point_count: int
    local_copies_bytes: ByteCount = strawberry.field(description="Bytes of the ZIP files in the local copies folder.")
    captured_bytes: ByteCount = strawberry.field(
        description="Every restore point's sizeBytes added up, content shared between them counted in each: "
        "what storing it once saved is this less storedBytes."
    )

    @classmethod
    def from_domain(cls, usage: StorageUsage_) -> StorageUsage:
        return cls(
            stored_bytes=ByteCount(usage.stored_bytes),
            blob_count=usage.blob_count,
            restore_point_count=usage.restore_point_count,
            local_copies_bytes=ByteCount(usage.local_copies_bytes),
            captured_bytes=ByteCount(usage.captured_bytes),
        )
