"""The request context: the services, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.apply import ApplyService
from server.domain.download_links import DownloadSigner
from server.domain.local_copies import LocalCopyService
from server.domain.restore_points import RestorePointService
from server.domain.settings_store import SettingsStore
from server.domain.system import SystemMonitor
from server.operations.runner import OperationRunner


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived services, shared by every request (no sessions or loaders in here)."""

    restore_points: RestorePointService
    settings: SettingsStore
    runner: OperationRunner
    local_copies: LocalCopyService
    downloads: DownloadSigner
    max_page_size: int
    public_url: str | None  # where clients reach us, for links; None: the request's own URL
    apply: ApplyService
    system: SystemMonitor


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking. Anonymous until tokens arrive; `name` ends up in createdBy/requestedBy."""

    name: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.name is None


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    actor: Actor
    base_url: str  # the URL this request came in on, e.g. http://127.0.0.1:8000/

    def link(self, path: str) -> str:
        """An absolute URL for one of our paths."""
        base = self.services.public_url or self.base_url
        return base.rstrip("/") + path
