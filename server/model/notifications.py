"""Notifications: the events a target may want, a message to send, and a target's delivery state."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class NotificationEvent(enum.StrEnum):
    """What a notification target can be told about (CONTRACT names)."""

    OPERATION_FAILED = "OPERATION_FAILED"
    HEALTH_CHANGED = "HEALTH_CHANGED"
    BACKUP_OVERDUE = "BACKUP_OVERDUE"
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    CONFIGURATION_CHANGED = "CONFIGURATION_CHANGED"
    APPLY_FINISHED = "APPLY_FINISHED"


class NoticeLevel(enum.StrEnum):
    """How a message is shown (a colour or an icon on most services)."""

    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILURE = "FAILURE"


@dataclass(frozen=True, slots=True)
class Notice:
    """One message: a short title and a body short enough for a phone's screen."""

    event: NotificationEvent | None  # None: a test message (testNotification)
    title: str
    body: str
    level: NoticeLevel = NoticeLevel.INFO


@dataclass(frozen=True, slots=True)
class TargetState:
    """A target's last delivery (stored, so that it outlives a restart)."""

    last_sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationTarget:
    """A declared target: its name, its URL with secrets masked, what it wants, and its state."""

    name: str
    masked_url: str
    events: tuple[NotificationEvent, ...]
    state: TargetState = TargetState()
