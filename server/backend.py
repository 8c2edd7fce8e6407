"""The composition root: `build_services` wires every service from the config, `Backend.open`
runs the start-up steps (server/startup.py) on them, `Backend.close` stops them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from server import startup
from server.api.context import Services
from server.clock import SYSTEM_CLOCK, Clock, utc_now
from server.config.config_file import load_config_file
from server.config.environment import ServerConfig
from server.config.locations_file import FolderLocationSpec, LocationSpec
from server.model.access.download_links import DownloadSigner
from server.model.diffs.diff_content import Limits
from server.notices import first_token_notice
from server.operations.runner import OperationRunner
from server.services.access import AccessService
from server.services.apply.run import ApplyTools
from server.services.apply.service import ApplyService
from server.services.blob_keeper import BlobKeeper
from server.services.diffs import DiffService
from server.services.items.browse import ItemBrowser
from server.services.items.copy_reader import CopyEntries
from server.services.items.download import ItemDownloadService
from server.services.local_copies.encryption import CopyEncryption
from server.services.local_copies.service import LocalCopyService
from server.services.locations.service import LocationService
from server.services.notifications.delivery import DeliveryTimes
from server.services.notifications.messages import Sender
from server.services.notifications.service import NotificationService
from server.services.operations_view import OperationsView
from server.services.restart import RestartStep
from server.services.restore_points import RestorePointService
from server.services.schedules.changes import ChangeWatch
from server.services.schedules.copies import ScheduledCopies
from server.services.schedules.expiry import ExpiryTimer
from server.services.schedules.health import HealthService
from server.services.schedules.heartbeat import Heartbeat
from server.services.schedules.scheduler import Scheduler
from server.services.schedules.service import ScheduleService
from server.services.settings_store import SettingsStore
from server.services.source_catalog import SourceCatalog
from server.services.storage_usage import StorageUsageReader
from server.services.system import SystemMonitor
from server.services.verification.service import VerificationService
from server.services.verification.tools import Tools as VerifyTools
from server.sources.factory import build_sources
from server.storage.apply_journal import ApplyJournal
from server.storage.blobs.content_store import ContentStore
from server.storage.db.database import Database
from server.storage.encryption import Keyring
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.local_copy.format import ArchiveLimits
from server.storage.locations.folder import FolderStore
from server.storage.locations.s3 import S3Store
from server.storage.locations.store import LocationStore
from server.storage.locations.unfinished import UnfinishedUploads, journal_folder
from server.storage.secret_key import load_or_create_secret
from server.test_seams import TestSeams
from server.version import SERVER_VERSION
from server.web.download import download_endpoint
from server.web.item_download import item_download_endpoint


def archive_limits(config: ServerConfig) -> ArchiveLimits:
    return ArchiveLimits(
        max_entries=config.import_max_entries,
        max_total_size=config.import_max_total_bytes,
        max_entry_size=config.import_max_entry_bytes,
        max_manifest_bytes=config.import_max_manifest_bytes,
    )


def location_store(spec: LocationSpec, config: ServerConfig, keyring: Keyring, seams: TestSeams) -> LocationStore:
    """The store for one declared location."""
    unfinished = UnfinishedUploads(journal_folder(config.data_dir, spec.name))
    if isinstance(spec, FolderLocationSpec):
        return FolderStore(
            spec.name,
            spec.path,
            archive_limits(config),
            keyring=keyring,
            encrypt=spec.encrypt,
            unfinished=unfinished,
            chunk_delay=seams.entry_delay,
        )
    return S3Store(
        spec,
        part_size=config.location_part_bytes,
        page_size=config.location_list_page_size,
        part_delay=seams.entry_delay,
        unfinished=unfinished,
    )


@dataclass(frozen=True, slots=True)
class Built:
    """What build_services makes: the services, and what only start-up and shutdown touch."""

    services: Services
    runner: OperationRunner
    db: Database
    store: ContentStore
    keeper: BlobKeeper
    journal: ApplyJournal
    download: Callable[[Request], Awaitable[Response]]
    item_download: Callable[[Request], Awaitable[Response]]


def build_services(config: ServerConfig, *, clock: Clock, seams: TestSeams) -> Built:
    """Every service, each handed what it needs straight from here. Wiring only: nothing runs
    (start-up is server/startup.py's); the stores make their folders, the signing key is read
    or made once (the data folder exists: startup.make_folders)."""
    db = Database(config.resolved_database_url)
    store = ContentStore(
        config.blobs_dir, packs=config.pack_small_blobs, pause_after_appends=seams.pack_pause_after_appends
    )
    runner = OperationRunner(
        db,
        concurrency=config.max_concurrent_operations,
        entry_delay=seams.entry_delay,
        final_write_delay=seams.final_write_delay,
    )
    keeper = BlobKeeper(db=db, store=store, lock=asyncio.Lock(), test_rewrite_pause=seams.pack_rewrite_pause_seconds)
    steps = seams.steps

    declared = load_config_file(
        config.config_file, data_dir=config.data_dir, local_copies_dir=config.resolved_local_copies_dir
    )
    sources = tuple(
        build_sources(
            declared.sources,
            db=db,
            data_dir=config.data_dir,
            local_copies_dir=config.resolved_local_copies_dir,
            clock=clock,
        )
    )
    keyring = Keyring(config.data_dir, declared.recipients)
    folder = LocalCopyFolder(config.resolved_local_copies_dir, archive_limits(config), keyring=keyring)

    restore_points = RestorePointService(
        db=db, store=store, keeper=keeper, runner=runner, sources=sources, server_version=SERVER_VERSION, clock=clock
    )
    system = SystemMonitor(sources=sources, server_version=SERVER_VERSION, server_name=config.server_name)
    settings_store = SettingsStore(db, check_writable=system.check_writable)
    journal = ApplyJournal(config.apply_journal_path)
    apply = ApplyService(
        runner=runner,
        tools=ApplyTools(
            store=store,
            keeper=keeper,
            restore_points=restore_points,
            sources=sources,
            settings=settings_store,
            system=system,
            journal=journal,
            restart=RestartStep(command=config.restart_command, timeout=config.restart_timeout, sources=sources),
            steps=steps,
        ),
    )
    local_copies = LocalCopyService(  # its constructor registers how the runner finishes copies a crash left named
        folder=folder,
        keyring=keyring,
        store=store,
        runner=runner,
        restore_points=restore_points,
        max_upload_bytes=config.max_upload_bytes,
        steps=steps,
        server_name=config.server_name,
    )
    stores = {spec.name: location_store(spec, config, keyring, seams) for spec in declared.locations}
    locations = LocationService(
        stores=stores,
        local_copies=local_copies,
        folder=folder,
        keyring=keyring,
        runner=runner,
    )
    access = AccessService(
        db, clock=lambda: utc_now(clock), active_cache_seconds=min(1.0, config.auth_recheck_seconds / 2)
    )
    secret = config.secret_key.get_secret_value() if config.secret_key else load_or_create_secret(config.data_dir)
    downloads = DownloadSigner(secret, max_expiry_seconds=config.max_download_expiry_seconds, clock=clock)
    schedules = ScheduleService(db=db, clock=clock, locations=[spec.name for spec in declared.locations])
    copy_entries = CopyEntries(folder)  # a local copy's entries, read in place once per version of its file
    item_downloads = ItemDownloadService(
        db=db,
        store=store,
        restore_points=restore_points,
        local_copies=local_copies,
        copy_folder=folder,
        copy_entries=copy_entries,
        sources=sources,
    )
    changes = ChangeWatch(
        sources=sources, fingerprint=system.fingerprint, clock=clock, check_seconds=config.change_check_seconds
    )
    settings_store.on_change(lambda module: changes.note(f"settings module {module!r}"))
    verification = VerificationService(
        tools=VerifyTools(
            db=db,
            store=store,
            keeper=keeper,
            folder=folder,
            encryption=CopyEncryption(folder, keyring),
            holds=runner.holds,
            clock=clock,
            steps=steps,
            locations=stores,
        ),
        runner=runner,
        restore_points=restore_points,
    )
    scheduler = Scheduler(
        schedules=schedules,
        restore_points=restore_points,
        runner=runner,
        poll_seconds=config.scheduler_poll_seconds,
        copies=ScheduledCopies(
            db=db,
            clock=clock,
            local_copies=local_copies,
            locations=locations,
            keep_last={spec.name: spec.keep_last for spec in declared.locations if spec.keep_last is not None},
            steps=steps,
        ),
        changes=changes,
        safety_max_age_days=config.safety_max_age_days,
        expiry=ExpiryTimer(restore_points=restore_points, runner=runner, clock=clock),
        steps=steps,
        heartbeat=Heartbeat(
            config.heartbeat_url.get_secret_value() if config.heartbeat_url else None,
            timeout=config.heartbeat_timeout_seconds,
        ),
        verification=verification,
    )
    catalog = SourceCatalog(sources)
    locations.on_copy_deleted(verification.forget_remote)
    health = HealthService(
        schedules=schedules,
        restore_points=restore_points,
        runner=runner,
        poll_seconds=config.scheduler_poll_seconds,
        verification=verification,
        verification_warning_days=config.verification_warning_days,
    )
    diffs = DiffService(
        restore_points=restore_points,
        sources=sources,
        store=store,
        limits=Limits(text_bytes=config.diff_text_limit_bytes, diff_bytes=config.diff_max_bytes),
    )
    notifications = NotificationService(
        targets=declared.notifications,
        sender=Sender(config.server_name, config.public_url),
        times=DeliveryTimes(
            timeout=config.notify_timeout_seconds, retry=config.notify_retry_seconds, fold=config.notify_fold_seconds
        ),
        clock=clock,
        restore_points=restore_points,
        diffs=diffs,
        health=health,
        db=db,
        overdue_hours=config.notify_overdue_hours,
        poll_seconds=config.scheduler_poll_seconds,
        verification=verification,
    )
    runner.on_end(notifications.operation_ended)  # told as each operation ends; it only queues
    services = Services(
        restore_points=restore_points,
        settings=settings_store,
        operations=OperationsView(runner),
        local_copies=local_copies,
        downloads=downloads,
        sources=catalog,
        access=access,
        apply=apply,
        system=system,
        usage=StorageUsageReader(store, folder, restore_points.count, restore_points.total_size),
        locations=locations,
        diffs=diffs,
        schedules=schedules,
        scheduler=scheduler,
        health=health,
        item_downloads=item_downloads,
        item_browser=ItemBrowser(
            db=db,
            restore_points=restore_points,
            sources=catalog,
            local_copies=local_copies,
            copy_entries=copy_entries,
        ),
        verification=verification,
        notifications=notifications,
    )
    download = download_endpoint(
        downloads, str(config.resolved_local_copies_dir), runner.holds, stall_seconds=config.body_timeout_seconds
    )
    item_download = item_download_endpoint(downloads, item_downloads, stall_seconds=config.body_timeout_seconds)
    return Built(
        services=services,
        runner=runner,
        db=db,
        store=store,
        keeper=keeper,
        journal=journal,
        download=download,
        item_download=item_download,
    )


@dataclass
class Backend:
    config: ServerConfig
    db: Database
    runner: OperationRunner
    services: Services
    download: Callable[[Request], Awaitable[Response]]
    item_download: Callable[[Request], Awaitable[Response]]
    background: list[asyncio.Task[None]] = field(default_factory=list)  # start-up work still going

    @classmethod
    async def open(
        cls,
        config: ServerConfig,
        *,
        seams: TestSeams | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_first_token: Callable[[str, ServerConfig], None] = first_token_notice,
    ) -> Backend:
        """Make the folders, wire the services, then run the start-up steps in their order
        (server/startup.py: migrate, clear leftovers, load the blob index, ... ).

        `seams` are the test seams (server/test_seams.py; None: all off). `clock` and
        `on_first_token` are what a test server in the test's own process swaps: a clock it
        moves forward, and a hook that hands it the first admin token."""
        startup.make_folders(config)
        built = build_services(config, clock=clock, seams=seams or TestSeams.off())
        background = await startup.start_up(built, config, on_first_token=on_first_token)
        services = built.services
        return cls(
            config=config,
            db=built.db,
            runner=built.runner,
            services=services,
            download=built.download,
            item_download=built.item_download,
            background=background,
        )

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await self.services.scheduler.stop()
        await self.runner.stop()
        await self.services.notifications.stop()
        await self.db.close()
