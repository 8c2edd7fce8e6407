"""Notifications: notificationTargets (each target with its last delivery) and testNotification.
The targets are declared in the config file; their URLs are only ever shown masked."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.api.context import Info
from server.api.errors import UserError, attempt
from server.model import notifications as models

# strawberry.enum registers the domain's enum itself (see types/operation.py).
strawberry.enum(
    models.NotificationEvent,
    description="What a notification target can be told about. VERIFICATION_FAILED is not sent yet.",
)
NotificationEvent = models.NotificationEvent


@strawberry.type(
    description="Where the server tells people what happened: a [[notifications]] entry of the config file."
)
class NotificationTarget:
    name: str
    url: str = strawberry.field(description="Its Apprise URL, with passwords and tokens masked.")
    events: list[NotificationEvent] = strawberry.field(description="The events it is sent.")
    last_sent_at: datetime | None = strawberry.field(
        description="When a message last reached it; null if none ever did."
    )
    last_error: str | None = strawberry.field(
        description="Why the last message did not reach it (a timeout, a refused connection, what the "
        "service answered), or that it was given up after retries; null after a delivery."
    )

    @classmethod
    def from_domain(cls, target: models.NotificationTarget) -> NotificationTarget:
        return cls(
            name=target.name,
            url=target.masked_url,
            events=list(target.events),
            last_sent_at=target.state.last_sent_at,
            last_error=target.state.last_error,
        )


@strawberry.type
class NotificationTestPayload:
    delivered: bool = strawberry.field(description="Whether the test message reached the target.")
    error: str | None = strawberry.field(description="Why it did not; null when it did.")
    user_errors: list[UserError]


@strawberry.type
class NotificationQueries:
    @strawberry.field(description="The notification targets of the config file, in its order.")
    def notification_targets(self, info: Info) -> list[NotificationTarget]:
        return [NotificationTarget.from_domain(target) for target in info.context.services.notifications.targets()]


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(
        description="Send a test message to the target now, once (no retry), and say whether it was delivered. "
        "NOT_FOUND for a name no target has."
    )
    async def test_notification(self, info: Info, name: str) -> NotificationTestPayload:
        notifications = info.context.services.notifications
        problem, errors = await attempt(lambda: notifications.test(name))
        if errors:
            return NotificationTestPayload(delivered=False, error=None, user_errors=errors)
        return NotificationTestPayload(delivered=problem is None, error=problem, user_errors=[])
