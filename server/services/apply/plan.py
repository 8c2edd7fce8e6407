"""Before an apply touches anything: which source gets which entries, and is all content intact."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.manifests import manifest_checksum
from server.model.records import LogLevel, ManifestEntry, RestorePoint
from server.operations.live import OperationContext
from server.sources.base import Source
from server.storage.blobs.content_store import ContentStore

MAX_LOGGED_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    """The restore point's entries, grouped for each configured source that gets replaced."""

    point: RestorePoint
    entries: Sequence[ManifestEntry]
    steps: Sequence[tuple[Source, list[ManifestEntry]]]  # in the configured order
    # An item apply: per source, the restore point's entries of the chosen items (the steps
    # hold each source's merged list). A source that can replace just those does so.
    chosen: Mapping[str, Sequence[ManifestEntry]] = field(default_factory=dict)

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(source.name for source, _ in self.steps)

    @property
    def applied_entries(self) -> list[ManifestEntry]:
        """The entries of the sources it replaces (all of them, unless some were chosen)."""
        return [entry for _, entries in self.steps for entry in entries]


def group_by_source(entries: Iterable[ManifestEntry]) -> dict[str, list[ManifestEntry]]:
    """Entries per source name, each list in manifest order."""
    groups: dict[str, list[ManifestEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.source, []).append(entry)
    return groups


def make_plan(
    point: RestorePoint,
    entries: Sequence[ManifestEntry],
    sources: Sequence[Source],
    only: Sequence[str] | None = None,
) -> tuple[ApplyPlan, list[str]]:
    """The plan, and the configured sources the restore point does not cover (left as they are).

    Entries of a source that is not configured here fail the apply before anything changes:
    half a restore point is not the restore point. With `only` (source names, all configured),
    just those sources are replaced: a partial apply the caller asked for.
    """
    groups = group_by_source(entries)
    if only:
        sources = [source for source in sources if source.name in set(only)]
        groups = {name: group for name, group in groups.items() if name in set(only)}
    configured = {source.name for source in sources}
    unknown = sorted(set(groups) - configured)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise OperationFailed(
            OperationErrorCode.UNKNOWN_SOURCE,
            f"restore point {point.id} holds content of source {names}, which is not configured "
            "on this server; nothing was changed",
        )
    steps = [(source, groups[source.name]) for source in sources if source.name in groups]
    untouched = [source.name for source in sources if source.name not in groups]
    return ApplyPlan(point=point, entries=entries, steps=steps), untouched


def find_source(sources: Sequence[Source], name: str) -> Source:
    for source in sources:
        if source.name == name:
            return source
    raise OperationFailed(OperationErrorCode.UNKNOWN_SOURCE, f"source {name!r} is not configured on this server")


async def verify_content(
    ctx: OperationContext,
    plan: ApplyPlan,
    store: ContentStore,
    *,
    hashed_when_staged: AbstractSet[str] = frozenset(),
) -> None:
    """Check the manifest's checksum and every blob's presence and SHA-256, off the event loop.

    Blobs in `hashed_when_staged` are only checked for presence here: staging hashes them as
    it copies them, still before anything changes (see apply_stage.py), so reading them
    here as well would read the restore point twice.
    """
    ctx.progress(0.0, "Verifying restore point")
    point = plan.point
    if manifest_checksum(plan.entries) != point.checksum or len(plan.entries) != point.item_count:
        raise OperationFailed(
            OperationErrorCode.CONTENT_DAMAGED,
            f"the manifest of restore point {point.id} does not match its checksum; nothing was changed",
        )
    blobs: dict[str, ManifestEntry] = {}
    for entry in plan.applied_entries:  # the content of a source left out is not read
        if entry.sha256 is not None:
            blobs.setdefault(entry.sha256, entry)
    later = [digest for digest in blobs if digest in hashed_when_staged]
    now = {digest: entry for digest, entry in blobs.items() if digest not in hashed_when_staged}
    problems: list[str] = []

    def found(entry: ManifestEntry, problem: str) -> None:
        problems.append(f"{entry.source}/{entry.path}: {problem}")
        if len(problems) <= MAX_LOGGED_PROBLEMS:
            ctx.log(f"Damaged: {entry.source}/{entry.path}: {problem}.", LogLevel.ERROR)

    for digest in await asyncio.to_thread(lambda: [d for d in later if not store.has(d)]):
        found(blobs[digest], "content missing")
    await ctx.pace()
    total = sum(entry.size for entry in now.values()) or 1
    done = 0
    for digest, entry in now.items():
        problem = await asyncio.to_thread(_check_blob, store, digest)
        if problem is not None:
            found(entry, problem)
        done += entry.size
        ctx.progress(done / total)
        await ctx.pace()
    if problems:
        raise OperationFailed(
            OperationErrorCode.CONTENT_DAMAGED,
            f"{len(problems)} item(s) of restore point {point.id} are damaged ({problems[0]}"
            f"{', ...' if len(problems) > 1 else ''}); nothing was changed",
        )
    if later:
        ctx.log(
            f"Verified {len(plan.entries)} items ({len(blobs)} distinct contents): every content is present, "
            f"{len(now)} hashed now; the other {len(later)} are hashed as they are copied, before anything changes."
        )
    else:
        ctx.log(f"Verified {len(plan.entries)} items ({len(blobs)} distinct contents): every hash is right.")


def _check_blob(store: ContentStore, digest: str) -> str | None:
    if not store.has(digest):
        return "content missing"
    if not store.verify(digest):
        return "content does not match its SHA-256"
    return None
