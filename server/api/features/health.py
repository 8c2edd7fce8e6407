"""Backup health for monitoring: backupHealth, and backupHealthChanged to follow it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from server.api.context import Info
from server.api.types.health import BackupHealth


@strawberry.type
class HealthQueries:
    @strawberry.field(description="Backup health from the schedules and their last runs.")
    async def backup_health(self, info: Info) -> BackupHealth:
        return BackupHealth.from_domain(await info.context.services.health.read())


@strawberry.type
class HealthSubscriptions:
    @strawberry.subscription(
        description="Backup health at once, then each time it changes. Never completes on its own."
    )
    async def backup_health_changed(self, info: Info) -> AsyncGenerator[BackupHealth, None]:
        async for found in info.context.services.health.follow():
            yield BackupHealth.from_domain(found)
