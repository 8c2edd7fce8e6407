from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from server.api.scalars import ByteCount
from server.api.types.node import Node


@strawberry.type(description="A ZIP file in the local copies folder: exported here, uploaded, or copied in by hand.")
class LocalCopy(Node):
    file_name: str
    path: str = strawberry.field(description="Where the file lies on the server.")
    size_bytes: ByteCount
    modified_at: datetime
    restore_point_id: strawberry.ID | None = strawberry.field(
        description="The restore point the copy holds, read from its manifest; null when unreadable."
    )
    problem: str | None = strawberry.field(
        description="Why the copy cannot be imported; null when it can."
    )

    @strawberry.field(description="The restore point the copy holds; null when it is not in the database.")
    async def restore_point(
        self, info: strawberry.Info
    ) -> Annotated["RestorePoint", strawberry.lazy("server.api.types.restore_point")] | None:
        from server.api.types.restore_point import RestorePoint

        if self.restore_point_id is None:
            return None
        point = await info.context.services.restore_points.get(str(self.restore_point_id))
        return RestorePoint.from_domain(point) if point else None
