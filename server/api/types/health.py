"""Backup health as GraphQL types: its status, the problems (text, and what each is about)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.services.schedules import health

strawberry.enum(health.HealthStatus)
strawberry.enum(
    health.HealthSubjectKind,
    description="What a health problem is about. Today problems name schedules and locations; the other "
    "kinds are reserved for problems with one restore point or one source, so handle them too.",
)


@strawberry.type(description="One backup health problem: its text, and what it is about, so a client can link it.")
class HealthProblem:
    message: str = strawberry.field(description="The same text as the matching entry of `problems`.")
    status: health.HealthStatus = strawberry.field(description="What this problem alone makes the health.")
    subject_kind: health.HealthSubjectKind
    subject_id: str = strawberry.field(
        description="The subject's id: a schedule's `id`, a location's `name`, a restore point's `id`, "
        "a source's `name`."
    )
    operation_id: strawberry.ID | None = strawberry.field(
        description="The operation (a schedule's run) the problem is about, when it is about one."
    )

    @classmethod
    def from_domain(cls, problem: health.HealthProblem) -> HealthProblem:
        return cls(
            message=problem.message,
            status=problem.status,
            subject_kind=problem.subject_kind,
            subject_id=problem.subject_id,
            operation_id=strawberry.ID(problem.operation_id) if problem.operation_id else None,
        )


@strawberry.type(
    description="Backup health for monitoring: a schedule whose last run failed is CRITICAL; one whose "
    "last success is older than twice its period, or whose last run could not copy to a location, is a "
    "WARNING. Paused schedules are not judged."
)
class BackupHealth:
    status: health.HealthStatus
    problems: list[str]
    issues: list[HealthProblem] = strawberry.field(
        description="The problems again, each with its subject (kind and id), in the order of `problems`."
    )
    last_success_at: datetime | None = strawberry.field(
        description="The newest successful backup: a schedule's last success, or the newest restore point made "
        "here whatever made it (by hand, a script, a schedule, before an apply); imported ones do not count."
    )
    last_attempt_at: datetime | None
    next_run_at: datetime | None

    @classmethod
    def from_domain(cls, found: health.BackupHealth) -> BackupHealth:
        return cls(
            status=found.status,
            problems=list(found.problems),
            issues=[HealthProblem.from_domain(issue) for issue in found.issues],
            last_success_at=found.last_success_at,
            last_attempt_at=found.last_attempt_at,
            next_run_at=found.next_run_at,
        )
