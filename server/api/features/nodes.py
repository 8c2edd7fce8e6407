"""Relay's node(id): any object by its id, whatever its feature (the id's prefix says which)."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.types.node import Node
from server.api.types.operation import Operation
from server.api.types.restore_point import RestorePoint


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its id (Relay).")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        services = info.context.services
        prefix = str(id).split("_", 1)[0]
        if prefix == "rp" and (point := await services.restore_points.get(str(id))):
            return RestorePoint.from_domain(point)
        if prefix == "op" and (op := await services.operations.get(str(id))):
            return Operation.from_domain(op)
        if prefix == "rc" and (copy := await services.locations.get_copy(str(id))):
            from server.api.types.location import RemoteCopy

            return RemoteCopy.from_domain(copy)
        if prefix == "sch" and (schedule := await services.schedules.get(str(id))):
            from server.api.types.schedule import Schedule

            return Schedule.from_domain(schedule)
        return None
