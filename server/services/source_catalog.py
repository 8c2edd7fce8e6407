"""The configured sources, and how each one is doing right now."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from server.sources.base import Source, SourceInfo

log = logging.getLogger(__name__)

DESCRIBE_SECONDS = 15.0


class SourceCatalog:
    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = tuple(sources)

    def get(self, name: str) -> Source | None:
        return next((source for source in self.sources if source.name == name), None)

    async def describe_all(self) -> list[SourceInfo]:
        """Every source's state, checked concurrently; a slow one is reported, not waited for."""
        return list(await asyncio.gather(*(self._describe(source) for source in self.sources)))

    async def _describe(self, source: Source) -> SourceInfo:
        try:
            return await asyncio.wait_for(source.describe(), DESCRIBE_SECONDS)
        except TimeoutError:
            problem = f"no answer within {DESCRIBE_SECONDS:.0f} seconds"
        except Exception:
            log.exception("describing source %s failed", source.name)
            problem = "could not be checked; see the server log"
        return SourceInfo(source.name, source.kind, False, None, problem=problem)
