"""The composition root: builds the services from settings, starts and stops them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from server.api.context import Services
from server.clock import SYSTEM_CLOCK, Clock, utc_now
from server.config.encryption_file import load_recovery_recipients
from server.config.environment import ServerConfig
from server.config.locations_file import FolderLocationSpec, LocationSpec, load_locations
from server.config.sources_file import load_sources
from server.model.diff_content import Limits
from server.model.download_links import DownloadSigner
from server.notices import first_token_notice
from server.operations.runner import OperationRunner
from server.services.access import AccessService
from server.services.apply.run import ApplyTools
from server.services.apply.service import ApplyService
from server.services.blob_keeper import BlobKeeper
from server.services.diffs import DiffService
from server.services.local_copies import LocalCopyService
from server.services.locations import LocationService
from server.services.operations_view import OperationsView
from server.services.restart import RestartStep
from server.services.restore_points import RestorePointService
from server.services.schedules.changes import ChangeWatch
from server.services.schedules.copies import ScheduledCopies
from server.services.schedules.expiry import ExpiryTimer
from server.services.schedules.health import HealthService
from server.services.schedules.scheduler import Scheduler
from server.services.schedules.service import ScheduleService
from server.services.settings_store import SettingsStore
from server.services.source_catalog import SourceCatalog
from server.services.step_control import StepControl
from server.services.storage_usage import StorageUsageReader
from server.services.system import SystemMonitor
from server.sources.base import StagingSource
from server.sources.factory import build_sources
from server.storage.apply_journal import ApplyJournal
from server.storage.content_store import ContentStore
from server.storage.database import Database
from server.storage.encryption import Keyring
from server.storage.leftovers import clear_leftovers
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.local_copy.format import ArchiveLimits
from server.storage.locations.folder import FolderStore
from server.storage.locations.s3 import S3Store
from server.storage.locations.store import LocationStore
from server.storage.locations.unfinished import UnfinishedUploads, journal_folder
from server.storage.secret_key import load_or_create_secret
from server.version import SERVER_VERSION
from server.web.download import download_endpoint

log = logging.getLogger(__name__)


def archive_limits(settings: ServerConfig) -> ArchiveLimits:
    return ArchiveLimits(
        max_entries=settings.import_max_entries,
        max_total_size=settings.import_max_total_bytes,
        max_entry_size=settings.import_max_entry_bytes,
        max_manifest_bytes=settings.import_max_manifest_bytes,
    )


def location_store(spec: LocationSpec, settings: ServerConfig, keyring: Keyring | None = None) -> LocationStore:
    """The store for one declared location."""
    unfinished = UnfinishedUploads(journal_folder(settings.data_dir, spec.name))
    if isinstance(spec, FolderLocationSpec):
        return FolderStore(
            spec.name,
            spec.path,
            archive_limits(settings),
            keyring=keyring,
            encrypt=spec.encrypt,
            unfinished=unfinished,
            chunk_delay=settings.test_entry_delay,
        )
    return S3Store(
        spec,
        part_size=settings.location_part_bytes,
        page_size=settings.location_list_page_size,
        part_delay=settings.test_entry_delay,
        unfinished=unfinished,
    )


@dataclass
class Backend:
    settings: ServerConfig
    db: Database
    store: ContentStore
    runner: OperationRunner
    services: Services
    download: Callable[[Request], Awaitable[Response]]
    background: list[asyncio.Task[None]] = field(default_factory=list)  # start-up work still going

    @classmethod
    async def open(
        cls,
        settings: ServerConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_first_token: Callable[[str, ServerConfig], None] = first_token_notice,
    ) -> Backend:
        """Migrate the database, seed it, recover from a previous run, start the runner.

        `clock` and `on_first_token` are what a test server in the test's own process swaps:
        a clock it moves forward, and a hook that hands it the first admin token."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.resolved_local_copies_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        await asyncio.to_thread(db.migrate)
        store = ContentStore(
            settings.blobs_dir,
            packs=settings.pack_small_blobs,
            pause_after_appends=settings.test_pack_pause_after_appends,
        )
        # Before any operation starts: a live one's temp files would match the patterns too.
        removed = await asyncio.to_thread(
            clear_leftovers, data_dir=settings.data_dir, local_copies_dir=settings.resolved_local_copies_dir
        )
        removed.add("the content store", await asyncio.to_thread(store.clear_temporary))
        if removed:
            log.info("removed the temporary files a stopped server left: %s", removed.summary())
        runner = OperationRunner(
            db,
            concurrency=settings.max_concurrent_operations,
            entry_delay=settings.test_entry_delay,
        )
        keeper = BlobKeeper(
            db=db, store=store, lock=asyncio.Lock(), test_rewrite_pause=settings.test_pack_rewrite_pause_seconds
        )
        # Before anything reads a blob (an apply resumed by runner.start reads packed ones).
        await keeper.load_index()
        specs = load_sources(
            settings.config, data_dir=settings.data_dir, local_copies_dir=settings.resolved_local_copies_dir
        )
        location_specs = load_locations(
            settings.config,
            data_dir=settings.data_dir,
            local_copies_dir=settings.resolved_local_copies_dir,
            sources=specs,
        )
        sources = SourceCatalog(
            build_sources(
                specs,
                db=db,
                data_dir=settings.data_dir,
                local_copies_dir=settings.resolved_local_copies_dir,
                clock=clock,
            )
        )
        restore_points = RestorePointService(
            db=db,
            store=store,
            keeper=keeper,
            runner=runner,
            sources=sources.sources,
            server_version=SERVER_VERSION,
            clock=clock,
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
                journal=(journal := ApplyJournal(settings.apply_journal_path)),
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
        keyring = Keyring(settings.data_dir, load_recovery_recipients(settings.config))
        folder = LocalCopyFolder(settings.resolved_local_copies_dir, archive_limits(settings), keyring=keyring)
        local_copies = LocalCopyService(  # before runner.start: it finishes copies a crash left named
            folder=folder,
            store=store,
            runner=runner,
            restore_points=restore_points,
            max_upload_bytes=settings.max_upload_bytes,
            steps=StepControl(pause_at=settings.test_pause_at, fail_at=settings.test_fail_at),
        )
        await runner.start()  # an apply the last process left is resumed here (see apply.py)
        await apply.tidy()
        if await asyncio.to_thread(journal.read) is None:  # no apply to resume: its side folders are leftovers
            for source in sources.sources:
                if isinstance(source, StagingSource):
                    try:
                        await asyncio.to_thread(source.discard_leftovers)
                    except OSError:
                        log.exception("could not remove what an earlier apply of source %s left", source.name)
        freed = await keeper.collect_all()
        if freed:
            log.info("freed %d bytes of content no restore point uses", freed)
        locations = LocationService(
            stores={spec.name: location_store(spec, settings, keyring) for spec in location_specs},
            local_copies=local_copies,
            folder=folder,
            runner=runner,
        )
        secret = (
            settings.secret_key.get_secret_value()
            if settings.secret_key
            else await asyncio.to_thread(load_or_create_secret, settings.data_dir)
        )
        access = AccessService(
            db, clock=lambda: utc_now(clock), active_cache_seconds=min(1.0, settings.auth_recheck_seconds / 2)
        )
        if settings.auth_enabled and (first_token := await access.create_first_admin()):
            log.warning("no API tokens existed: created the admin token 'admin' (shown once on stderr)")
            on_first_token(first_token, settings)
        schedules = ScheduleService(db=db, clock=clock, locations=[spec.name for spec in location_specs])
        scheduler = Scheduler(
            schedules=schedules,
            restore_points=restore_points,
            runner=runner,
            poll_seconds=settings.scheduler_poll_seconds,
            copies=ScheduledCopies(
                db=db,
                clock=clock,
                local_copies=local_copies,
                locations=locations,
                keep_last={spec.name: spec.keep_last for spec in location_specs if spec.keep_last is not None},
                steps=StepControl(pause_at=settings.test_pause_at, fail_at=settings.test_fail_at),
            ),
            changes=(
                changes := ChangeWatch(
                    sources=restore_points.sources,
                    fingerprint=system.fingerprint,
                    clock=clock,
                    check_seconds=settings.change_check_seconds,
                )
            ),
            safety_max_age_days=settings.safety_max_age_days,
            expiry=ExpiryTimer(restore_points=restore_points, runner=runner, clock=clock),
            steps=StepControl(pause_at=settings.test_pause_at, fail_at=settings.test_fail_at),
        )
        settings_store.on_change(lambda module: changes.note(f"settings module {module!r}"))
        services = Services(
            restore_points=restore_points,
            settings=settings_store,
            operations=OperationsView(runner),
            local_copies=local_copies,
            downloads=DownloadSigner(secret, max_expiry_seconds=settings.max_download_expiry_seconds, clock=clock),
            max_page_size=settings.max_page_size,
            sources=sources,
            public_url=settings.public_url,
            access=access,
            auth_enabled=settings.auth_enabled,
            apply=apply,
            system=system,
            usage=StorageUsageReader(store, folder, restore_points.count),
            locations=locations,
            diffs=DiffService(
                restore_points=restore_points,
                store=store,
                limits=Limits(text_bytes=settings.diff_text_limit_bytes, diff_bytes=settings.diff_max_bytes),
            ),
            schedules=schedules,
            scheduler=scheduler,
            health=HealthService(
                schedules=schedules,
                restore_points=restore_points,
                runner=runner,
                poll_seconds=settings.scheduler_poll_seconds,
            ),
        )
        scheduler.start()  # after recovery: a run missed while stopped runs once, now
        # Uploads a crash cut off: aborted in the background (a location that does not answer
        # must not hold up the start; its next use tries again).
        cleanup = asyncio.get_running_loop().create_task(locations.abort_unfinished())
        download = download_endpoint(
            services.downloads,
            str(settings.resolved_local_copies_dir),
            runner.holds,
            stall_seconds=settings.body_timeout_seconds,
        )
        return cls(
            settings=settings,
            db=db,
            store=store,
            runner=runner,
            services=services,
            download=download,
            background=[cleanup],
        )

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await self.services.scheduler.stop()
        await self.runner.stop()
        await self.db.close()
