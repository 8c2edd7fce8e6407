"""Per-event extension hooks at the cost of what they do, not of how Strawberry calls them.

For every event of every subscription Strawberry builds a context manager over all schema
extensions (wrapping each hook anew) and asks each extension for its results: ~20 µs an
event, multiplied by a thousand subscribers of one log. Our extensions do nothing there
unless the result has errors (QuickMaskErrors is the only one with an on_stream_result
hook) and none adds results, so a clean result can skip both, with exactly the outcome the
full path would have had. Anything else takes Strawberry's own path.
"""

from __future__ import annotations

import contextlib
from typing import Any

from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types.execution import ExecutionResult

_NOTHING = contextlib.nullcontext()


def _overrides(extension: SchemaExtension, hook: str) -> bool:
    return getattr(type(extension), hook) is not getattr(SchemaExtension, hook)


class EventHooksRunner(SchemaExtensionsRunner):
    def __init__(self, *args: Any, quiet_on_clean: tuple[type[MaskErrors], ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Skippable for a result without errors: every on_stream_result hook belongs to an
        # error masker whose hook only touches errors.
        self._skip_clean_results = all(
            isinstance(extension, quiet_on_clean) and type(extension).on_stream_result is MaskErrors.on_stream_result
            for extension in self.extensions
            if _overrides(extension, "on_stream_result")
        )
        self._no_results = not any(_overrides(extension, "get_results") for extension in self.extensions)

    def on_stream_result(self, result: Any) -> Any:
        if self._skip_clean_results and type(result) is ExecutionResult and not result.errors:
            return _NOTHING  # nullcontext works as an async context manager too
        return super().on_stream_result(result)

    async def get_extensions_results(self, ctx: Any) -> dict[str, Any]:
        if self._no_results:
            return dict(ctx.extensions_results)  # what merging every extension's {} gives
        return await super().get_extensions_results(ctx)
