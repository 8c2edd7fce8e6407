"""What each event says (server/services/notifications/messages.py): the server's name in every
title, a link when the public URL is known, bodies short enough for a phone, folding."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from server.model.diffs.config_diff import Change, ChangeKind, DiffSummary
from server.model.errors import OperationErrorCode
from server.model.notifications import NoticeLevel, NotificationEvent
from server.model.records import (
    Operation,
    OperationError,
    OperationKind,
    OperationStatus,
    RestorePoint,
    RestorePointOrigin,
)
from server.services.notifications import messages

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BY = messages.Sender("media-01", "https://backups.example.net/")


def operation(**changes: object) -> Operation:
    values: dict[str, object] = {
        "id": "op_1",
        "kind": OperationKind.CREATE_RESTORE_POINT,
        "status": OperationStatus.FAILED,
        "progress": 1.0,
        "stage": None,
        "created_at": AT,
        "started_at": AT,
        "finished_at": AT,
        "requested_by": "ui",
        "dismissed": False,
        "error": OperationError(OperationErrorCode.SOURCE_UNAVAILABLE, "source 'site' is gone"),
        "restore_point_id": None,
        "local_copy_id": None,
    }
    return Operation(**(values | changes))  # type: ignore[arg-type]


def point(point_id: str = "rp_2", label: str = "nightly") -> RestorePoint:
    return RestorePoint(point_id, label, None, RestorePointOrigin.SCHEDULED, AT, "schedule:x", 1, 1, 1, "c" * 64, "1")


def test_a_failure_names_the_server_the_operation_its_code_and_links_to_the_page() -> None:
    notice = messages.operation_failed(operation(), BY)
    assert notice.title == "media-01: create restore point failed"
    assert notice.body == (
        "Create restore point op_1 failed (SOURCE_UNAVAILABLE): source 'site' is gone (requested by ui).\n"
        "https://backups.example.net/"
    )
    assert notice.event is NotificationEvent.OPERATION_FAILED and notice.level is NoticeLevel.FAILURE


def test_without_a_public_url_there_is_no_link_and_a_long_message_is_cut() -> None:
    long = operation(error=OperationError(OperationErrorCode.INTERNAL, "x" * 5000))
    notice = messages.operation_failed(long, messages.Sender("media-01"))
    assert len(notice.body) == messages.BODY_CHARACTERS and notice.body.endswith("...")


def test_an_apply_says_who_applied_what_and_what_it_changed() -> None:
    done = operation(
        kind=OperationKind.APPLY_RESTORE_POINT,
        status=OperationStatus.SUCCEEDED,
        error=None,
        restore_point_id="rp_2",
        params={"changes": {"changed": 2, "added": 1}, "sources": ["site"]},
    )
    notice = messages.apply_finished(done, point(), BY)
    assert notice.title == "media-01: restore point applied" and notice.level is NoticeLevel.SUCCESS
    assert notice.body.startswith(
        "ui applied restore point 'nightly' (rp_2) (sources: site): 2 changed, 1 added, 0 removed"
    )


def test_a_configuration_change_counts_and_names_the_first_changes() -> None:
    made = operation(
        status=OperationStatus.SUCCEEDED,
        error=None,
        restore_point_id="rp_2",
        params={"changedBy": "settings module 'audio'"},
    )
    changes = [Change("settings", f"m{n}.json", ChangeKind.CHANGED, None, None) for n in range(5)]
    notice = messages.configuration_changed(made, point(), point("rp_1"), DiffSummary(changed=7), changes, BY)
    assert notice.body.startswith(
        "The configuration changed (changed by settings module 'audio'); restore point 'nightly' (rp_2) was made. "
        "Since rp_1: 7 changed, 0 added, 0 removed: changed settings/m0.json, "
    )
    assert "changed settings/m4.json, ...." in notice.body


def test_a_burst_is_folded_into_one_message_with_counts_and_the_first_few() -> None:
    notices = [messages.operation_failed(operation(id=f"op_{n}"), BY) for n in range(20)]
    one = messages.folded(notices, Counter({NotificationEvent.OPERATION_FAILED: 30}), BY)
    assert one.title == "media-01: 50 events" and one.event is NotificationEvent.OPERATION_FAILED
    assert one.body.startswith(
        "50 events: 50 operation failed. - create restore point failed: Create restore point op_0"
    )
    assert one.body.count("- create restore point failed") == messages.FIRST_FOLDED
    assert len(one.body) <= messages.BODY_CHARACTERS + len("\nhttps://backups.example.net/")
    assert messages.folded(notices[:1], Counter(), BY) is notices[0]


def test_health_and_overdue() -> None:
    health = messages.health_changed("OK", "CRITICAL", ["schedule 'x': its last run failed"], BY)
    assert health.title == "media-01: backup health CRITICAL" and health.level is NoticeLevel.FAILURE
    assert health.body.startswith("Backup health is CRITICAL (was OK). - schedule 'x': its last run failed")
    overdue = messages.backup_overdue(None, 26, BY)
    assert overdue.body.startswith("No restore point succeeded in the last 26 hours: there never was one.")


def test_verification_damage_lists_the_first_problems() -> None:
    notice = messages.verification_failed([f"blob {n} is damaged" for n in range(7)], BY)
    assert notice.event is NotificationEvent.VERIFICATION_FAILED and notice.title == "media-01: verification failed"
    assert notice.body.startswith("Verification found damage that was not repaired: - blob 0 is damaged")
    assert "- blob 4 is damaged (and 2 more)" in notice.body and "blob 5" not in notice.body
