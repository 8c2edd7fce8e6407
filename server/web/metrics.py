"""GET /metrics: Prometheus text format (prometheus-client), computed from stored history and
the schedules. A viewer token is needed unless BACKUPS_METRICS_PUBLIC=1."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from server.api.auth import bearer_token, identify
from server.model.records import Schedule
from server.model.tokens import Role
from server.storage.metrics_repo import HistoryTotals, history_totals

if TYPE_CHECKING:  # the backend is built above this layer; only its type is needed here
    from server.backend import Backend


class _Fixed(Collector):
    """Hands prometheus-client metric families already read (the reads are async)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def families(totals: HistoryTotals, schedules: Iterable[Schedule]) -> list[Metric]:
    """The metric families for these totals and schedules."""
    operations = CounterMetricFamily(
        "backups_operations", "Operations by kind and final status", labels=["kind", "status"]
    )
    for (kind, status), count in sorted(totals.operations.items()):
        operations.add_metric([kind, status], count)
    duration = GaugeMetricFamily(
        "backups_operation_duration_seconds_sum", "Total run time of finished operations", labels=["kind"]
    )
    duration_count = GaugeMetricFamily(
        "backups_operation_duration_seconds_count", "Finished operations timed", labels=["kind"]
    )
    for kind, (seconds, count) in sorted(totals.durations.items()):
        duration.add_metric([kind], seconds)
        duration_count.add_metric([kind], count)
    points = GaugeMetricFamily("backups_restore_points", "Restore points by origin", labels=["origin"])
    size = GaugeMetricFamily("backups_restore_point_bytes", "Total size of restore points by origin", labels=["origin"])
    stored = GaugeMetricFamily("backups_stored_bytes", "Bytes restore points added to storage", labels=["origin"])
    for origin, (n, total_size, total_stored) in sorted(totals.restore_points.items()):
        points.add_metric([origin], n)
        size.add_metric([origin], total_size)
        stored.add_metric([origin], total_stored)
    deletions = CounterMetricFamily("backups_retention_deletions", "Restore points deleted by retention")
    deletions.add_metric([], totals.retention_deletions)
    success = GaugeMetricFamily(
        "backups_schedule_last_success_timestamp_seconds", "Last successful run per schedule", labels=["schedule"]
    )
    attempt = GaugeMetricFamily(
        "backups_schedule_last_attempt_timestamp_seconds", "Last run started per schedule", labels=["schedule"]
    )
    upcoming = GaugeMetricFamily(
        "backups_schedule_next_run_timestamp_seconds", "Next run per enabled schedule", labels=["schedule"]
    )
    for schedule in schedules:
        if schedule.last_success_at:
            success.add_metric([schedule.name], schedule.last_success_at.timestamp())
        if schedule.last_run_at:
            attempt.add_metric([schedule.name], schedule.last_run_at.timestamp())
        if schedule.enabled and schedule.next_run_at:
            upcoming.add_metric([schedule.name], schedule.next_run_at.timestamp())
    return [operations, duration, duration_count, points, size, stored, deletions, success, attempt, upcoming]


async def metrics(request: Request) -> Response:
    """The metrics, for a viewer token (or anyone with BACKUPS_METRICS_PUBLIC=1)."""
    backend: Backend = request.app.state.backend
    if not backend.settings.metrics_public:
        actor = await identify(backend.services, bearer_token(request.headers.get("authorization")))
        if actor.role is None or not actor.role.covers(Role.VIEWER):
            return PlainTextResponse(
                "a viewer token is needed: send Authorization: Bearer <token>",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    async with backend.db.read() as session:
        totals = await history_totals(session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families(totals, await backend.services.schedules.list_all())))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
