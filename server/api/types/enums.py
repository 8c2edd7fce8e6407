"""The domain's enums, exposed to GraphQL under the same names."""

from __future__ import annotations

import strawberry

from server.model import records as models

# strawberry.enum registers the class itself and returns it: the names below are the
# domain's enums, so a type checker and the resolvers see one class, the schema its enum.
for _enum in (
    models.OperationKind,
    models.OperationStatus,
    models.LogLevel,
    models.RestorePointOrigin,
    models.EntryKind,
):
    strawberry.enum(_enum)

OperationKind = models.OperationKind
OperationStatus = models.OperationStatus
LogLevel = models.LogLevel
RestorePointOrigin = models.RestorePointOrigin
EntryKind = models.EntryKind
