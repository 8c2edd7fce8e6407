from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from server.model import records as models


@strawberry.type(description="One module of the built-in settings store: a JSON document.")
class Module:
    name: str
    settings: JSON
    updated_at: datetime

    @classmethod
    def from_domain(cls, module: models.Module) -> Module:
        return cls(name=module.name, settings=JSON(module.settings), updated_at=module.updated_at)
