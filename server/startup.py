"""The start-up steps, one function each; `start_up` runs them in their order.

`Backend.open` makes the folders (`make_folders`), wires the services (`build_services`, which
runs nothing), then `start_up` runs, in this order, each step after what it relies on:

1. `migrate`: the database's schema up to date; every later step reads or writes it.
2. `clear_leftovers`: the temporary files a stopped server left; before any operation starts,
   since a live one's temporary files would match the same patterns.
3. `load_blob_index`: where each packed blob is; before anything reads a blob (an apply that
   step 5 resumes reads packed ones).
4. `seed_settings`: a new server's starting settings modules.
5. `resume_operations`: the runner starts (operations a crash cut off are finished, resumed
   or marked INTERRUPTED: an apply resumes, an export or fetch that named its copy ends), a
   finished apply's journal is tidied, and with no apply to resume the side folders of an
   earlier apply are removed.
6. `collect_garbage`: blobs no restore point uses are freed; after the resume, whose
   operations pin what they still need.
7. `first_admin_token`: on a server that never had a token (authentication on), one admin
   token, handed to `on_first_token` (shown once on stderr).
8. `start_scheduler`: after recovery, so that a run missed while stopped runs once, now.
9. `start_notifications`: the targets' stored last deliveries read, then each target's
   sender and the watchers of backup health and an overdue backup started; what ended before
   (a resumed apply) is queued already and goes out now.
10. `abort_unfinished_uploads`: in the background (a location that does not answer must not
   hold up the start; its next use tries again); the task is returned for `Backend.close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from server.config.environment import ServerConfig
from server.operations.runner import OperationRunner
from server.services.access import AccessService
from server.services.apply.service import ApplyService
from server.services.blob_keeper import BlobKeeper
from server.services.locations.service import LocationService
from server.services.notifications.service import NotificationService
from server.services.schedules.scheduler import Scheduler
from server.services.settings_store import SettingsStore
from server.sources.base import Source, StagingSource
from server.storage import leftovers
from server.storage.apply_journal import ApplyJournal
from server.storage.blobs.content_store import ContentStore
from server.storage.db.database import Database

if TYPE_CHECKING:
    from server.backend import Built

log = logging.getLogger(__name__)


async def start_up(
    built: Built, config: ServerConfig, *, on_first_token: Callable[[str, ServerConfig], None]
) -> list[asyncio.Task[None]]:
    """Run the start-up steps in their order (this module's docstring says why each is where
    it is); returns the work still going in the background."""
    services = built.services
    await migrate(built.db)
    await clear_leftovers(config, built.store)
    await load_blob_index(built.keeper)
    await seed_settings(services.settings)
    await resume_operations(built.runner, services.apply, built.journal, services.sources.sources)
    await collect_garbage(built.keeper)
    await first_admin_token(services.access, config, on_first_token)
    start_scheduler(services.scheduler)
    await start_notifications(services.notifications)
    return [abort_unfinished_uploads(services.locations)]


def make_folders(config: ServerConfig) -> None:
    """The data folder and the local copies folder (before the wiring: the stores write there)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.resolved_local_copies_dir.mkdir(parents=True, exist_ok=True)


async def migrate(db: Database) -> None:
    await asyncio.to_thread(db.migrate)


async def clear_leftovers(config: ServerConfig, store: ContentStore) -> None:
    removed = await asyncio.to_thread(
        leftovers.clear_leftovers, data_dir=config.data_dir, local_copies_dir=config.resolved_local_copies_dir
    )
    removed.add("the content store", await asyncio.to_thread(store.clear_temporary))
    if removed:
        log.info("removed the temporary files a stopped server left: %s", removed.summary())


async def load_blob_index(keeper: BlobKeeper) -> None:
    await keeper.load_index()


async def seed_settings(settings_store: SettingsStore) -> None:
    if await settings_store.seed_if_empty():
        log.info("seeded the settings store with its starting modules")


async def resume_operations(
    runner: OperationRunner, apply: ApplyService, journal: ApplyJournal, sources: Sequence[Source]
) -> None:
    await runner.start()  # an apply the last process left is resumed here (services/apply/resume.py)
    await apply.tidy()
    if await asyncio.to_thread(journal.read) is None:  # no apply to resume: its side folders are leftovers
        for source in sources:
            if isinstance(source, StagingSource):
                try:
                    await asyncio.to_thread(source.discard_leftovers)
                except OSError:
                    log.exception("could not remove what an earlier apply of source %s left", source.name)


async def collect_garbage(keeper: BlobKeeper) -> None:
    freed = await keeper.collect_all()
    if freed:
        log.info("freed %d bytes of content no restore point uses", freed)


async def first_admin_token(
    access: AccessService, config: ServerConfig, on_first_token: Callable[[str, ServerConfig], None]
) -> None:
    if config.auth_enabled and (first_token := await access.create_first_admin()):
        log.warning("no API tokens existed: created the admin token 'admin' (shown once on stderr)")
        on_first_token(first_token, config)


def start_scheduler(scheduler: Scheduler) -> None:
    scheduler.start()


async def start_notifications(notifications: NotificationService) -> None:
    await notifications.start()


def abort_unfinished_uploads(locations: LocationService) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(locations.abort_unfinished())
