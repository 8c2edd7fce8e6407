"""Who may use which root field: ONE table, attached to the schema as permission classes.

Every Query, Mutation and Subscription field must have an entry here: build_schema refuses a
root field without one (so a new field is never open by accident), and so does a test.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import strawberry
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema.name_converter import NameConverter
from strawberry.schema_directive import Location

from server.api.context import Info
from server.api.http.auth import current_actor, forbidden, unauthenticated
from server.api.types.caller import Role as RoleEnum
from server.model.access.tokens import Role

VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN

# "<root type>.<field>" -> the smallest role that may use it. Keep each section sorted.
MINIMUM_ROLE: dict[str, Role] = {
    "Query.apiTokens": ADMIN,
    "Query.applyPreview": VIEWER,
    "Query.compareRestorePoints": VIEWER,
    "Query.backupHealth": VIEWER,
    "Query.localCopies": VIEWER,
    "Query.localCopy": VIEWER,
    "Query.locations": VIEWER,
    "Query.me": VIEWER,
    "Query.modules": VIEWER,
    "Query.node": VIEWER,
    "Query.notificationTargets": VIEWER,
    "Query.operation": VIEWER,
    "Query.operations": VIEWER,
    "Query.restorePoint": VIEWER,
    "Query.restorePoints": VIEWER,
    "Query.retentionPreview": VIEWER,
    "Query.schedule": VIEWER,
    "Query.schedules": VIEWER,
    "Query.sources": VIEWER,
    "Query.storage": VIEWER,
    "Query.system": VIEWER,
    "Mutation.applyRestorePoint": ADMIN,
    "Mutation.cancelOperation": OPERATOR,
    "Mutation.createApiToken": ADMIN,
    "Mutation.createDownloadUrl": OPERATOR,
    "Mutation.createItemDownloadUrl": OPERATOR,
    "Mutation.createRestorePoint": OPERATOR,
    "Mutation.createSchedule": ADMIN,
    "Mutation.deleteLocalCopy": ADMIN,
    "Mutation.deleteRemoteCopy": ADMIN,
    "Mutation.deleteRestorePoint": ADMIN,
    "Mutation.deleteSchedule": ADMIN,
    "Mutation.dismissFinishedOperations": OPERATOR,
    "Mutation.dismissOperation": OPERATOR,
    "Mutation.exportEmergencyKit": ADMIN,
    "Mutation.exportRestorePoint": OPERATOR,
    "Mutation.fetchFromLocation": OPERATOR,
    "Mutation.importLocalCopy": OPERATOR,
    "Mutation.pruneSchedule": ADMIN,
    "Mutation.revokeApiToken": ADMIN,
    "Mutation.runSchedule": ADMIN,
    "Mutation.testNotification": OPERATOR,
    "Mutation.updateRestorePoint": ADMIN,
    "Mutation.updateSchedule": ADMIN,
    "Mutation.updateSettings": ADMIN,
    "Mutation.uploadLocalCopy": OPERATOR,
    "Mutation.uploadToLocation": OPERATOR,
    "Mutation.verifyBackups": OPERATOR,
    "Subscription.backupHealthChanged": VIEWER,
    "Subscription.operationLog": VIEWER,
    "Subscription.operationProgress": VIEWER,
    "Subscription.operationsChanged": VIEWER,
    "Subscription.systemChanged": VIEWER,
}


class UnclassifiedFieldError(Exception):
    """A root field with no entry in MINIMUM_ROLE: refused rather than left open."""


@strawberry.schema_directive(
    name="requiresRole",
    locations=[Location.FIELD_DEFINITION],
    description="The smallest role whose tokens may use this field.",
)
class RequiresRole:
    role: RoleEnum


class RoleRequired(BasePermission):
    """Lets a field run only for a caller whose token has at least `role`."""

    role: ClassVar[Role]

    def __init__(self, field: str) -> None:
        self.field = field

    @property
    def schema_directive(self) -> object:
        """@requiresRole(role: ...) on the field, so the printed schema says who may use it."""
        return RequiresRole(role=self.role)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        actor = await current_actor(info.context)
        if actor.role is None:
            raise unauthenticated(info.context)
        if not actor.role.covers(self.role):
            raise forbidden(actor, self.role, self.field)
        return True


class IsViewer(RoleRequired):
    role = VIEWER


class IsOperator(RoleRequired):
    role = OPERATOR


class IsAdmin(RoleRequired):
    role = ADMIN


PERMISSION_OF_ROLE: dict[Role, type[RoleRequired]] = {VIEWER: IsViewer, OPERATOR: IsOperator, ADMIN: IsAdmin}


def protect(root: type, names: NameConverter) -> type:
    """Give each field of a merged root type the permission its MINIMUM_ROLE entry names."""
    definition = root.__strawberry_definition__  # type: ignore[attr-defined]
    keys = [f"{definition.name}.{names.get_graphql_name(field)}" for field in definition.fields]
    if missing := [key for key in keys if key not in MINIMUM_ROLE]:
        raise UnclassifiedFieldError(
            f"root fields without a role in server/api/permissions.py MINIMUM_ROLE: {', '.join(missing)}"
        )
    protected = []
    for key, field in zip(keys, definition.fields, strict=True):
        permission = PERMISSION_OF_ROLE[MINIMUM_ROLE[key]](key)
        # A copy: the same field objects back every schema built from these classes.
        field = copy.copy(field)
        field.directives = list(field.directives)
        field.extensions = [*field.extensions, PermissionExtension([permission])]  # last runs first
        protected.append(field)
    definition.fields = protected
    return root


def root_field_names(schema: strawberry.Schema) -> list[str]:
    """Every root field of the schema as "<root type>.<field>"."""
    names: list[str] = []
    for root in (schema.query, schema.mutation, schema.subscription):
        if root is None:
            continue
        definition = root.__strawberry_definition__  # type: ignore[attr-defined]
        graphql_name = schema.config.name_converter.get_graphql_name
        names.extend(f"{definition.name}.{graphql_name(field)}" for field in definition.fields)
    return names
