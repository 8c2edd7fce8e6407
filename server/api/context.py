"""The request context: the services, the server's config, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import strawberry

from server.api.loaders import Loaders, make_loaders
from server.api.pagination import RecentConnections
from server.config.environment import ServerConfig
from server.model.access.download_links import DownloadSigner
from server.model.access.tokens import ApiToken, Role
from server.services.access import AccessService
from server.services.apply.service import ApplyService
from server.services.diffs import DiffService
from server.services.items.browse import ItemBrowser
from server.services.items.download import ItemDownloadService
from server.services.local_copies.service import LocalCopyService
from server.services.locations.service import LocationService
from server.services.operations_view import OperationsView
from server.services.restore_points import RestorePointService
from server.services.schedules.health import HealthService
from server.services.schedules.scheduler import Scheduler
from server.services.schedules.service import ScheduleService
from server.services.settings_store import SettingsStore
from server.services.source_catalog import SourceCatalog
from server.services.storage_usage import StorageUsageReader
from server.services.system import SystemMonitor
from server.services.verification.service import VerificationService


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived services, shared by every request (no sessions or loaders in here)."""

    restore_points: RestorePointService
    settings: SettingsStore
    operations: OperationsView  # the history, following, cancel and dismiss (not the runner itself)
    local_copies: LocalCopyService
    downloads: DownloadSigner
    access: AccessService
    apply: ApplyService
    system: SystemMonitor
    usage: StorageUsageReader  # Query.storage
    locations: LocationService  # Query.locations, the upload and fetch mutations
    diffs: DiffService  # compareRestorePoints, applyPreview
    schedules: ScheduleService
    scheduler: Scheduler
    health: HealthService
    item_downloads: ItemDownloadService  # createItemDownloadUrl (the link is served by server/web/item_download.py)
    item_browser: ItemBrowser  # RestorePoint.items
    verification: VerificationService  # verifyBackups, and each restore point's and copy's verification
    sources: SourceCatalog = field(default_factory=lambda: SourceCatalog(()))
    connections: RecentConnections = field(default_factory=RecentConnections)  # the API's own, per app


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: the token's name (for createdBy/requestedBy) and role; anonymous without one."""

    name: str | None = None
    role: Role | None = None
    token_id: str | None = None
    expires_at: datetime | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.role is None

    @classmethod
    def of_token(cls, token: ApiToken) -> Actor:
        return cls(name=token.name, role=token.role, token_id=token.id, expires_at=token.expires_at)


ANONYMOUS = Actor()
# With authentication off (loopback only), everyone may do everything and nobody is named.
UNCHECKED_ADMIN = Actor(role=Role.ADMIN)


@dataclass(slots=True)
class Context:
    """One per HTTP request, one per websocket connection (shared by its operations)."""

    services: Services
    # The server's config: page sizes, where clients reach us (public_url), whether auth is on.
    config: ServerConfig
    actor: Actor = ANONYMOUS
    base_url: str = "http://127.0.0.1/"  # the URL this request came in on, for links
    websocket: bool = False
    # The bearer token of the HTTP request or websocket handshake, if there was one.
    offered_token: str | None = None
    # Why the offered token was refused, when it matches a token: "expired" or "revoked".
    token_refusal: str | None = None
    # The token a websocket proved itself with: its operations check it again, so that a
    # revoked token stops working on a connection that is already open.
    recheck_token: bool = False
    # Set by strawberry from the websocket's connection_init payload.
    connection_params: dict[str, object] | None = None
    _loaders: Loaders | None = None

    @property
    def loaders(self) -> Loaders:
        """Batched lookups for fields of list items (made on first use)."""
        if self._loaders is None:
            self._loaders = make_loaders(self.services)
        return self._loaders

    def link(self, path: str) -> str:
        """An absolute URL for one of our paths."""
        base = self.config.public_url or self.base_url
        return base.rstrip("/") + path


# What every resolver receives: typed, so `info.context` is a Context to the type checker.
Info = strawberry.Info[Context, None]
