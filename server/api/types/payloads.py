"""Mutation results: the thing made or changed, or userErrors saying why not."""

from __future__ import annotations

import strawberry

from server.api.errors import UserError
from server.api.types.module import Module
from server.api.types.operation import Operation
from server.model import records as models


@strawberry.type
class OperationPayload:
    operation: Operation | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, op: models.Operation | None, errors: list[UserError]) -> OperationPayload:
        return cls(operation=Operation.from_domain(op) if op else None, user_errors=errors)


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class ModulePayload:
    module: Module | None
    user_errors: list[UserError]
