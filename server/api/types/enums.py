"""The domain's enums, exposed to GraphQL under the same names."""

from __future__ import annotations

import strawberry

from server.domain import models

OperationKind = strawberry.enum(models.OperationKind)
OperationStatus = strawberry.enum(models.OperationStatus)
LogLevel = strawberry.enum(models.LogLevel)
RestorePointOrigin = strawberry.enum(models.RestorePointOrigin)
EntryKind = strawberry.enum(models.EntryKind)
