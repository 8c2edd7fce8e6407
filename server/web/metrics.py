"""GET /metrics: Prometheus text format (prometheus-client), computed from stored history,
the schedules and the backup health, plus the process's own metrics. A viewer token is
needed unless BACKUPS_METRICS_PUBLIC=1. `promtool check metrics` passes on what it says."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from server.model.records import OperationKind, OperationStatus, Schedule
from server.model.verification import VerificationTotals
from server.services.schedules.health import BackupHealth, severity
from server.storage.db.metrics_repo import DURATION_BUCKETS, HistoryTotals, history_totals
from server.version import SERVER_VERSION
from server.web.monitoring_access import monitoring_reader

if TYPE_CHECKING:  # the backend is built above this layer; only its type is needed here
    from server.backend import Backend

# The process's CPU, memory, open files and start time (process_*), read from /proc at each
# scrape; made once, registered with each scrape's registry.
_PROCESS = ProcessCollector(registry=None)


class _Fixed(Collector):
    """Hands prometheus-client metric families already read (the reads are async)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _seconds(moment: datetime | None) -> float:
    """A Unix time; 0 for never, so that "time() - x > limit" fires for what never happened."""
    return moment.timestamp() if moment is not None else 0.0


def history_families(totals: HistoryTotals) -> list[Metric]:
    """The metric families counted from the stored history."""
    operations = CounterMetricFamily(
        "backups_operations", "Operations by kind and final status", labels=["kind", "status"]
    )
    # A failure counter of every kind from 0, so that the first failure is an increase an alert
    # sees (a series that first appears at 1 has, to Prometheus, not increased).
    counted = {(str(kind), str(OperationStatus.FAILED)): 0 for kind in OperationKind} | totals.operations
    for (kind, status), count in sorted(counted.items()):
        operations.add_metric([kind, status], count)
    duration = HistogramMetricFamily(
        "backups_operation_duration_seconds", "Run time of finished operations", labels=["kind"]
    )
    for kind, took in sorted(totals.durations.items()):
        buckets = [(f"{bound:g}", n) for bound, n in zip(DURATION_BUCKETS, took.at_most, strict=True)]
        duration.add_metric([kind], [*buckets, ("+Inf", took.count)], sum_value=took.seconds)
    points = GaugeMetricFamily("backups_restore_points", "Restore points by origin", labels=["origin"])
    size = GaugeMetricFamily("backups_restore_point_bytes", "Total size of restore points by origin", labels=["origin"])
    stored = GaugeMetricFamily("backups_stored_bytes", "Bytes restore points added to storage", labels=["origin"])
    for origin, (n, total_size, total_stored) in sorted(totals.restore_points.items()):
        points.add_metric([origin], n)
        size.add_metric([origin], total_size)
        stored.add_metric([origin], total_stored)
    deletions = CounterMetricFamily("backups_retention_deletions", "Restore points deleted by retention")
    deletions.add_metric([], totals.retention_deletions)
    return [operations, duration, points, size, stored, deletions]


def schedule_families(schedules: Iterable[Schedule]) -> list[Metric]:
    """Per schedule, labelled by name and whether it is enabled (a paused one can be left out
    of an alert); a schedule that never succeeded or never ran says 0."""
    labels = ["schedule", "enabled"]
    success = GaugeMetricFamily(
        "backups_schedule_last_success_timestamp_seconds",
        "Last successful run per schedule (0: never)",
        labels=labels,
    )
    attempt = GaugeMetricFamily(
        "backups_schedule_last_attempt_timestamp_seconds", "Last run started per schedule (0: never)", labels=labels
    )
    upcoming = GaugeMetricFamily(
        "backups_schedule_next_run_timestamp_seconds", "Next cron run per enabled schedule", labels=labels
    )
    # What each schedule's runs do, as an info series to join on `schedule` (the series above
    # keep their labels: alerts written against them keep matching).
    kinds = GaugeMetricFamily(
        "backups_schedule_info",
        "1 per schedule, its kind: backup (makes restore points) or verify (verifies them)",
        labels=["schedule", "kind"],
    )
    for schedule in schedules:
        these = [schedule.name, "true" if schedule.enabled else "false"]
        success.add_metric(these, _seconds(schedule.last_success_at))
        attempt.add_metric(these, _seconds(schedule.last_run_at))
        if schedule.enabled and schedule.next_run_at:
            upcoming.add_metric(these, schedule.next_run_at.timestamp())
        kinds.add_metric([schedule.name, "backup" if schedule.verification is None else "verify"], 1)
    return [success, attempt, upcoming, kinds]


def server_families(server_name: str) -> list[Metric]:
    """The server's name, as an info series: join it on `instance` to label any other series."""
    info = GaugeMetricFamily(
        "backups_server_info", "The server's name, BACKUPS_SERVER_NAME (always 1)", labels=["server_name"]
    )
    info.add_metric([server_name], 1)
    return [info]


def health_families(health: BackupHealth, copies: Mapping[str, bool]) -> list[Metric]:
    """The backup health, the newest success of any kind, and each location's newest copy."""
    status = GaugeMetricFamily(
        "backups_health_status", "Backup health, as backupHealth says it: 0 OK, 1 WARNING, 2 CRITICAL"
    )
    status.add_metric([], severity(health.status))
    newest = GaugeMetricFamily(
        "backups_last_success_timestamp_seconds",
        "The newest successful backup, whatever made it (imported restore points do not count; 0: never)",
    )
    newest.add_metric([], _seconds(health.last_success_at))
    copy_ok = GaugeMetricFamily(
        "backups_location_copy_ok",
        "Per location a schedule copies to: 1 when the newest copy a run meant for it arrived (or none was "
        "meant yet), 0 when it did not",
        labels=["location"],
    )
    for location, arrived in sorted(copies.items()):
        copy_ok.add_metric([location], 1 if arrived else 0)
    build = GaugeMetricFamily("backups_build_info", "The server's version (always 1)", labels=["version"])
    build.add_metric([SERVER_VERSION], 1)
    return [status, newest, copy_ok, build]


def verification_families(totals: VerificationTotals, damaged: int) -> list[Metric]:
    """What verifyBackups found and did, over every run."""
    last = GaugeMetricFamily(
        "backups_verification_last_timestamp_seconds", "When the last verification finished (0: never)"
    )
    last.add_metric([], _seconds(totals.last_finished_at))
    unresolved = GaugeMetricFamily(
        "backups_verification_damaged",
        "Restore points and local copies whose last verification found them DAMAGED or MISSING",
    )
    unresolved.add_metric([], damaged)
    repaired = CounterMetricFamily("backups_verification_repaired", "Blobs put back from a good copy")
    repaired.add_metric([], totals.repaired)
    read = CounterMetricFamily("backups_verification_read_bytes", "Bytes read by verifications")
    read.add_metric([], totals.bytes_read)
    return [last, unresolved, repaired, read]


async def metrics(request: Request) -> Response:
    """The metrics, for a viewer token (or anyone with BACKUPS_METRICS_PUBLIC=1)."""
    _, refusal = await monitoring_reader(request)
    if refusal is not None:
        return refusal
    backend: Backend = request.app.state.backend
    services = backend.services
    async with backend.db.read() as session:
        totals = await history_totals(session)
    families = [
        *history_families(totals),
        *schedule_families(await services.schedules.list_all()),
        *health_families(await services.health.read(), await services.health.location_copies()),
        *verification_families(await services.verification.totals(), len(await services.verification.unresolved())),
        *server_families(services.system.server_name),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    registry.register(_PROCESS)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
