"""The running system: state, version, and the fingerprint of its current configuration."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.context import Info
from server.api.errors import ClientError
from server.model.errors import UserErrorCode
from server.services import system as domain
from server.services.system import same_content

if TYPE_CHECKING:
    from server.api.types.operation import Operation

strawberry.enum(
    domain.SystemState,
    description="RUNNING normally; APPLYING while a restore point is applied (settings changes "
    "and new operations get BUSY); RESTARTING during the restart at the end of an apply.",
)
SystemState = domain.SystemState


@strawberry.type(description="The running system, so a client can show an apply and its restart.")
class System:
    state: SystemState
    since: datetime = strawberry.field(description="When the system entered this state.")
    server_version: str
    server_name: str = strawberry.field(
        description="This server's name (BACKUPS_SERVER_NAME, by default the host name): written into "
        "each copy it makes, so copies of many servers in one place can be told apart."
    )
    operation_id: strawberry.Private[str | None]

    @strawberry.field(description="The apply that put the system in this state; null while RUNNING.")
    async def operation(self, info: Info) -> Annotated[Operation, strawberry.lazy("server.api.types.operation")] | None:
        from server.api.types.operation import Operation

        if self.operation_id is None:
            return None
        op = await info.context.services.operations.get(self.operation_id)
        return Operation.from_domain(op) if op else None

    @strawberry.field(
        description="The checksum a restore point of the current configuration would have: equal "
        "to a restore point's checksum when the configuration holds exactly its content. Reads "
        "every source when asked for."
    )
    async def configuration_fingerprint(self, info: Info) -> str:
        return await info.context.services.system.fingerprint()

    @strawberry.field(
        description="Whether the current configuration holds exactly the items of this restore "
        "point (order aside). Unknown id: an error with code NOT_FOUND."
    )
    async def matches_restore_point(self, info: Info, id: strawberry.ID) -> bool | None:
        services = info.context.services
        if await services.restore_points.get(str(id)) is None:
            raise ClientError(f"no restore point with id {str(id)!r}", UserErrorCode.NOT_FOUND)
        theirs = await services.restore_points.entries(str(id))
        return same_content(await services.system.current_entries(), theirs)

    @classmethod
    def from_domain(cls, status: domain.SystemStatus) -> System:
        return cls(
            state=status.state,
            since=status.since,
            server_version=status.server_version,
            server_name=status.server_name,
            operation_id=status.operation_id,
        )
