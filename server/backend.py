"""The composition root: builds the services from settings, starts and stops them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from server.api.context import Services
from server.config import Settings
from server.domain.access import AccessService
from server.domain.restore_points import BlobKeeper, RestorePointService
from server.domain.settings_store import SettingsStore
from server.operations.runner import OperationRunner
from server.sources.settings_source import SettingsSource
from server.storage.content_store import ContentStore
from server.notices import first_token_notice
from server.storage.database import Database
from server.version import SERVER_VERSION

log = logging.getLogger(__name__)


@dataclass
class Backend:
    settings: Settings
    db: Database
    store: ContentStore
    runner: OperationRunner
    services: Services

    @classmethod
    async def open(cls, settings: Settings) -> Backend:
        """Migrate the database, seed it, recover from a previous run, start the runner."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.resolved_local_copies_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        await asyncio.to_thread(db.migrate)
        store = ContentStore(settings.blobs_dir)
        runner = OperationRunner(
            db,
            concurrency=settings.max_concurrent_operations,
            entry_delay=settings.test_entry_delay,
        )
        keeper = BlobKeeper(db=db, store=store, lock=asyncio.Lock())
        settings_store = SettingsStore(db)
        restore_points = RestorePointService(
            db=db,
            store=store,
            keeper=keeper,
            runner=runner,
            sources=[SettingsSource(db)],
            server_version=SERVER_VERSION,
        )
        if await settings_store.seed_if_empty():
            log.info("seeded the settings store with its starting modules")
        await runner.start()
        freed = await keeper.collect_all()
        if freed:
            log.info("freed %d bytes of content no restore point uses", freed)
        access = AccessService(db)
        if settings.auth_enabled and (secret := await access.create_first_admin()):
            log.warning("no API tokens existed: created the admin token 'admin' (shown once on stderr)")
            first_token_notice(secret, settings)
        services = Services(
            restore_points=restore_points,
            settings=settings_store,
            runner=runner,
            max_page_size=settings.max_page_size,
            access=access,
            auth_enabled=settings.auth_enabled,
        )
        return cls(settings=settings, db=db, store=store, runner=runner, services=services)

    async def close(self) -> None:
        await self.runner.stop()
        await self.db.close()
