"""The built-in settings store: its modules, and a merge patch into one of them."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from server.api.context import Info
from server.api.errors import UserError, attempt
from server.api.types.module import Module


@strawberry.type
class ModulePayload:
    module: Module | None
    user_errors: list[UserError]


@strawberry.type
class SettingsQueries:
    @strawberry.field(description="The modules of the built-in settings store.")
    async def modules(self, info: Info) -> list[Module]:
        return [Module.from_domain(m) for m in await info.context.services.settings.modules()]


@strawberry.type
class SettingsMutations:
    @strawberry.mutation(
        description="Merge `values` into a settings module (RFC 7386 merge patch: objects merge, null removes a key)."
    )
    async def update_settings(self, info: Info, module: str, values: JSON) -> ModulePayload:
        result, errors = await attempt(lambda: info.context.services.settings.update(module, values))
        return ModulePayload(module=Module.from_domain(result) if result else None, user_errors=errors)
