"""Backup health's pure parts: which run decides a location's copy state, and what counts as
the last success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.model.records import Operation, OperationKind, OperationStatus, RetentionPolicy, Schedule
from server.services.schedules.health import HealthStatus, HealthSubjectKind, assess, copy_outcomes

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def run(number: int, **params: Any) -> Operation:
    return Operation(
        id=f"op_{number:024x}",
        kind=OperationKind.CREATE_RESTORE_POINT,
        status=OperationStatus.SUCCEEDED,
        progress=1.0,
        stage=None,
        created_at=NOW,
        started_at=NOW,
        finished_at=NOW,
        requested_by="schedule:s",
        dismissed=False,
        error=None,
        restore_point_id=None,
        local_copy_id=None,
        params=params,
    )


def schedule(*, last_success_at: datetime | None = None) -> Schedule:
    return Schedule(
        id="sch_x",
        name="nightly",
        enabled=True,
        cron="0 3 * * *",
        time_zone="UTC",
        jitter_seconds=0,
        label_template=None,
        retention=RetentionPolicy(),
        created_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
        next_run_at=None,
        last_run_at=last_success_at,
        last_success_at=last_success_at,
        last_operation_id="op_" + "0" * 23 + "1",
        copy_to_locations=("usb", "share"),
    )


def test_the_newest_run_that_meant_a_copy_decides_each_location() -> None:
    runs = [
        run(3),  # a restore point made by hand: no copies meant
        run(2, copiesMade={"share": "a.zip"}, copiesFailed={}),
        run(1, copiesMade={"usb": "b.zip"}, copiesFailed={"share": "disk full"}),
    ]
    assert copy_outcomes(runs, {"usb", "share", "offsite"}) == {"share": True, "usb": True}
    # Arrived, but keepLast could not be applied there: the copy is there all the same.
    kept_badly = run(4, copiesMade={"usb": "c.zip"}, copiesFailed={"usb": "keepLast could not be applied: x"})
    assert copy_outcomes([kept_badly, *runs], {"usb"}) == {"usb": True}
    assert copy_outcomes([run(5, copiesMade={}, copiesFailed={"usb": "gone"}), *runs], {"usb"}) == {"usb": False}


def test_a_copy_problem_names_its_location_and_the_newest_restore_point_counts_as_a_success() -> None:
    last = run(1, copiesMade={"share": "a.zip"}, copiesFailed={"usb": "the folder does not exist"})
    ran_at = NOW - timedelta(minutes=30)
    by_hand = NOW - timedelta(minutes=5)
    found = assess([schedule(last_success_at=ran_at)], {"sch_x": last}, NOW, by_hand)
    assert found.status is HealthStatus.WARNING
    [issue] = found.issues
    assert (issue.subject_kind, issue.subject_id, issue.operation_id) == (HealthSubjectKind.LOCATION, "usb", last.id)
    assert found.problems == (issue.message,)
    assert found.last_success_at == by_hand
    assert assess([schedule(last_success_at=ran_at)], {}, NOW, None).last_success_at == ran_at
