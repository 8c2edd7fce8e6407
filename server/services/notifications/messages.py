"""What each event says: a title and a body short enough for a phone, naming the server and
linking to the page when the server knows its public URL. Pure: records in, a Notice out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from server.model.diffs.config_diff import Change, DiffSummary
from server.model.notifications import Notice, NoticeLevel, NotificationEvent
from server.model.records import Operation, OperationStatus, RestorePoint

BODY_CHARACTERS = 480  # a phone's lock screen shows about this much
FIRST_CHANGES = 5  # changed items named in a CONFIGURATION_CHANGED message
FIRST_FOLDED = 3  # messages named in a folded one


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the messages come from: the server's name, and its page (None: no public URL set)."""

    server: str
    page_url: str | None = None


def kind_words(op: Operation) -> str:
    """CREATE_RESTORE_POINT as "create restore point"."""
    return op.kind.value.replace("_", " ").lower()


def operation_failed(op: Operation, by: Sender) -> Notice:
    code = op.error.code.value if op.error else op.status.value
    message = op.error.message if op.error else "it did not finish"
    body = f"{kind_words(op).capitalize()} {op.id} failed ({code}): {message}" + _who(op)
    return _notice(NotificationEvent.OPERATION_FAILED, by, f"{kind_words(op)} failed", body, NoticeLevel.FAILURE)


def apply_finished(op: Operation, point: RestorePoint | None, by: Sender) -> Notice:
    what = _point_words(op.restore_point_id, point)
    scope = ""
    if items := op.params.get("items"):
        scope = f" (items: {', '.join(map(str, items[:FIRST_CHANGES]))}{', ...' if len(items) > FIRST_CHANGES else ''})"
    elif sources := op.params.get("sources"):
        scope = f" (sources: {', '.join(map(str, sources))})"
    who = op.requested_by or "someone"
    if op.status is OperationStatus.SUCCEEDED:
        found = op.params.get("changes")
        summary = DiffSummary.from_params(found) if found else None
        report = (
            f": {summary.changed} changed, {summary.added} added, {summary.removed} removed" if summary else ": done"
        )
        return _notice(
            NotificationEvent.APPLY_FINISHED,
            by,
            "restore point applied",
            f"{who} applied {what}{scope}{report} ({op.id}).",
            NoticeLevel.SUCCESS,
        )
    reason = f"{op.error.code.value}: {op.error.message}" if op.error else op.status.value
    return _notice(
        NotificationEvent.APPLY_FINISHED,
        by,
        f"apply {op.status.value.lower()}",
        f"{who} applied {what}{scope}: {op.status.value} ({reason}) ({op.id}).",
        NoticeLevel.FAILURE,
    )


def configuration_changed(
    op: Operation,
    point: RestorePoint | None,
    previous: RestorePoint | None,
    summary: DiffSummary | None,
    changes: Sequence[Change],
    by: Sender,
) -> Notice:
    """An after-change restore point was made: what changed since the restore point before it."""
    seen_by = op.params.get("changedBy")
    cause = f" (changed by {seen_by})" if seen_by else ""
    made = _point_words(op.restore_point_id, point)
    if summary is None or previous is None:
        body = f"The configuration changed{cause}; {made} was made; no restore point before it to compare."
    else:
        counts = f"{summary.changed} changed, {summary.added} added, {summary.removed} removed"
        first = ", ".join(f"{change.kind.value.lower()} {change.source}/{change.path}" for change in changes)
        more = len(changes) < summary.changed + summary.added + summary.removed
        body = (
            f"The configuration changed{cause}; {made} was made. Since {previous.id}: {counts}"
            + (f": {first}{', ...' if more else ''}" if first else "")
            + "."
        )
    return _notice(NotificationEvent.CONFIGURATION_CHANGED, by, "configuration changed", body)


def health_changed(before: str | None, status: str, problems: Sequence[str], by: Sender) -> Notice:
    level = {"OK": NoticeLevel.SUCCESS, "WARNING": NoticeLevel.WARNING}.get(status, NoticeLevel.FAILURE)
    body = f"Backup health is {status} (was {before or 'unknown'})."
    if problems:
        body += " " + " ".join(f"- {problem}" for problem in problems)
    return _notice(NotificationEvent.HEALTH_CHANGED, by, f"backup health {status}", body, level)


def backup_overdue(last_success_at: datetime | None, hours: float, by: Sender) -> Notice:
    since = f"the last one was at {last_success_at:%Y-%m-%d %H:%M} UTC" if last_success_at else "there never was one"
    body = f"No restore point succeeded in the last {hours:g} hours: {since}."
    return _notice(NotificationEvent.BACKUP_OVERDUE, by, "backup overdue", body, NoticeLevel.WARNING)


def verification_failed(problems: Sequence[str], by: Sender) -> Notice:
    """Damage found by a verification and not repaired: each restore point or copy, with its state."""
    shown = " ".join(f"- {problem}" for problem in problems[:FIRST_CHANGES])
    more = f" (and {len(problems) - FIRST_CHANGES} more)" if len(problems) > FIRST_CHANGES else ""
    body = f"Verification found damage that was not repaired: {shown}{more}"
    return _notice(NotificationEvent.VERIFICATION_FAILED, by, "verification failed", body, NoticeLevel.FAILURE)


def test_message(target: str, by: Sender) -> Notice:
    body = f"A test message to target {target!r}: if you read this, notifications reach you."
    return _notice(None, by, "test notification", body)


def folded(notices: Sequence[Notice], more: Counter[NotificationEvent | None], by: Sender) -> Notice:
    """Several messages as one: how many of each event, and the first few titles. `more`
    counts those not kept (a burst is bounded in memory)."""
    if len(notices) == 1 and not more:
        return notices[0]
    counts = Counter(notice.event for notice in notices) + more
    total = sum(counts.values())
    tally = ", ".join(f"{count} {(event or 'TEST').lower().replace('_', ' ')}" for event, count in counts.items())
    first = " ".join(f"- {_untitled(notice, by)}: {notice.body.splitlines()[0]}" for notice in notices[:FIRST_FOLDED])
    body = f"{total} events: {tally}. {first}" + (" ..." if total > FIRST_FOLDED else "")
    events = {notice.event for notice in notices} | set(more)
    only = next(iter(events)) if len(events) == 1 else None
    worst = max((notice.level for notice in notices), key=list(NoticeLevel).index)
    return _notice(only, by, f"{total} events", body, worst)


def _notice(
    event: NotificationEvent | None, by: Sender, what: str, body: str, level: NoticeLevel = NoticeLevel.INFO
) -> Notice:
    text = body if len(body) <= BODY_CHARACTERS else body[: BODY_CHARACTERS - 3] + "..."
    if by.page_url:
        text += f"\n{by.page_url}"
    return Notice(event, f"{by.server}: {what}", text, level)


def _untitled(notice: Notice, by: Sender) -> str:
    return notice.title.removeprefix(f"{by.server}: ")


def _who(op: Operation) -> str:
    return f" (requested by {op.requested_by})." if op.requested_by else "."


def _point_words(point_id: str | None, point: RestorePoint | None) -> str:
    if point is None:
        return f"restore point {point_id}" if point_id else "a restore point"
    return f"restore point {point.label!r} ({point.id})"
