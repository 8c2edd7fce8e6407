"""Query fields: thin reads through the services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from server.api.context import Info
from server.api.errors import to_client_error
from server.api.pagination import page_size
from server.api.types.enums import OperationKind, OperationStatus, RestorePointOrigin
from server.api.types.module import Module
from server.api.types.node import Node
from server.api.types.operation import Operation
from server.api.types.page_info import Connection, connection_of
from server.api.types.restore_point import RestorePoint
from server.api.types.storage_usage import StorageUsage
from server.model.errors import DomainError
from server.model.records import Page, RestorePointFilter
from server.model.records import RestorePoint as RestorePoint_


@strawberry.type
class Query:
    @strawberry.field(
        description="Restore points, newest first (a Relay connection), narrowed by any of: `origin` (any of "
        "these), `scheduleId` (made by that schedule), `pinned`, `createdAfter`/`createdBefore` (exclusive), "
        "`search` (in the label or note, case-insensitive), `createdBy` (exactly this requester, e.g. "
        "`schedule:nightly` or a token's name) and `hasCopyAt` (a location's name: those with a copy there "
        "now; an unknown name is a NOT_FOUND error, a location that cannot be listed LOCATION_UNAVAILABLE)."
    )
    async def restore_points(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        origin: list[RestorePointOrigin] | None = None,
        schedule_id: strawberry.ID | None = None,
        pinned: bool | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        created_by: str | None = None,
        has_copy_at: str | None = None,
    ) -> Connection[RestorePoint]:
        services = info.context.services
        try:
            ids = await services.locations.restore_point_ids_at(has_copy_at) if has_copy_at is not None else None
        except DomainError as error:
            raise to_client_error(error) from None
        narrow = RestorePointFilter(
            origins=tuple(origin) if origin is not None else None,
            schedule_id=str(schedule_id) if schedule_id is not None else None,
            pinned=pinned,
            created_after=created_after,
            created_before=created_before,
            search=search,
            created_by=created_by,
            ids=ids,
        )
        try:
            page = await services.restore_points.page(
                first=page_size(first, info.context.config.max_page_size), after=after, narrow=narrow
            )
        except DomainError as error:
            raise to_client_error(error) from None
        if not narrow.empty:
            return connection_of(
                page, RestorePoint.from_domain, after=after, count=lambda: services.restore_points.count(narrow)
            )
        return _restore_point_connection(page, after, services.restore_points.count)

    @strawberry.field
    async def restore_point(self, info: Info, id: strawberry.ID) -> RestorePoint | None:
        point = await info.context.services.restore_points.get(str(id))
        return RestorePoint.from_domain(point) if point else None

    @strawberry.field(
        description="Operations, newest first. Dismissed ones are left out of a list without a "
        "`status` filter unless `includeDismissed`; a `status` filter finds them either way. "
        "`createdAfter`/`createdBefore` (exclusive) bound createdAt."
    )
    async def operations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: list[OperationStatus] | None = None,
        kind: list[OperationKind] | None = None,
        include_dismissed: bool | None = False,
        requested_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Connection[Operation]:
        services = info.context.services
        try:
            page = await services.runner.history.page(
                first=page_size(first, info.context.config.max_page_size),
                after=after,
                statuses=status,
                kinds=kind,
                include_dismissed=bool(include_dismissed),
                requested_by=requested_by,
                created_after=created_after,
                created_before=created_before,
            )
        except DomainError as error:
            raise to_client_error(error) from None
        return connection_of(page, Operation.from_domain, after=after)

    @strawberry.field
    async def operation(self, info: Info, id: strawberry.ID) -> Operation | None:
        op = await info.context.services.runner.history.get(str(id))
        return Operation.from_domain(op) if op else None

    @strawberry.field(description="What the backups take on disk now.")
    async def storage(self, info: Info) -> StorageUsage:
        return StorageUsage.from_domain(await info.context.services.usage.read())

    @strawberry.field(description="The modules of the built-in settings store.")
    async def modules(self, info: Info) -> list[Module]:
        return [Module.from_domain(m) for m in await info.context.services.settings.modules()]

    @strawberry.field(description="Any object by its id (Relay).")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        services = info.context.services
        prefix = str(id).split("_", 1)[0]
        if prefix == "rp" and (point := await services.restore_points.get(str(id))):
            return RestorePoint.from_domain(point)
        if prefix == "op" and (op := await services.runner.history.get(str(id))):
            return Operation.from_domain(op)
        if prefix == "rc" and (copy := await services.locations.get_copy(str(id))):
            from server.api.types.location import RemoteCopy

            return RemoteCopy.from_domain(copy)
        if prefix == "sch" and (schedule := await services.schedules.get(str(id))):
            from server.api.types.schedule import Schedule

            return Schedule.from_domain(schedule)
        return None


def _restore_point_connection(
    page: Page[RestorePoint_], after: str | None, count: Callable[[], Awaitable[int]]
) -> Connection[RestorePoint]:
    """The page as a connection. The service hands out the very same first page until the
    next write, so the last few conversions are kept (GraphQL objects are never changed)."""
    key = (id(page), after, count)
    if (known := _CONVERTED.get(key)) is not None and known[0] is page:
        return known[1]
    connection = connection_of(page, RestorePoint.from_domain, after=after, count=count)
    _CONVERTED[key] = (page, connection)  # the page is kept with it: its id is not reused
    if len(_CONVERTED) > 8:
        _CONVERTED.pop(next(iter(_CONVERTED)))
    return connection


_CONVERTED: dict[tuple[object, ...], tuple[object, Connection[RestorePoint]]] = {}
