"""The composition root: builds the services from settings, starts and stops them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from server.api.context import Services
from server.config import Settings
from server.domain.apply import ApplyService
from server.domain.apply_run import ApplyTools
from server.domain.restart import RestartStep
from server.domain.restore_points import BlobKeeper, RestorePointService
from server.domain.settings_store import SettingsStore
from server.domain.step_control import StepControl
from server.domain.system import SystemMonitor
from server.operations.runner import OperationRunner
from server.sources.settings_source import SettingsSource
from server.storage.apply_journal import ApplyJournal
from server.storage.content_store import ContentStore
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
        restore_points = RestorePointService(
            db=db,
            store=store,
            keeper=keeper,
            runner=runner,
            sources=[SettingsSource(db)],
            server_version=SERVER_VERSION,
        )
        system = SystemMonitor(sources=restore_points.sources, server_version=SERVER_VERSION)
        settings_store = SettingsStore(db, check_writable=system.check_writable)
        apply = ApplyService(
            runner=runner,
            tools=ApplyTools(
                store=store,
                keeper=keeper,
                restore_points=restore_points,
                settings=settings_store,
                system=system,
                journal=ApplyJournal(settings.apply_journal_path),
                restart=RestartStep(
                    command=settings.restart_command,
                    timeout=settings.restart_timeout,
                    sources=restore_points.sources,
                ),
                steps=StepControl(pause_at=settings.test_pause_at, fail_at=settings.test_fail_at),
            ),
        )
        if await settings_store.seed_if_empty():
            log.info("seeded the settings store with its starting modules")
        await runner.start()  # an apply the last process left is resumed here (see apply.py)
        await apply.tidy()
        freed = await keeper.collect_all()
        if freed:
            log.info("freed %d bytes of content no restore point uses", freed)
        services = Services(
            restore_points=restore_points,
            settings=settings_store,
            runner=runner,
            max_page_size=settings.max_page_size,
            apply=apply,
            system=system,
        )
        return cls(settings=settings, db=db, store=store, runner=runner, services=services)

    async def close(self) -> None:
        await self.runner.stop()
        await self.db.close()
