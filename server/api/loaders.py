"""Batched lookups for fields of list items: a page of 50 operations finds its restore points
in one query, not fifty.

Batching only, no caching (cache=False): a websocket connection's context lives for hours and
would serve a stale restore point from a cache; a batch lives for one turn of the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from server.model.records import LocalCopy, RemoteCopy, RestorePoint
from server.model.verification import Verification, VerifiedKind

if TYPE_CHECKING:
    from server.api.context import Services
    from server.services.locations.service import CopiesOf


@dataclass(frozen=True, slots=True)
class Loaders:
    restore_points: DataLoader[str, RestorePoint | None]
    local_copies: DataLoader[str, LocalCopy | None]
    local_copies_of: DataLoader[str, list[LocalCopy]]  # by restore point id
    remote_copies_of: DataLoader[str, CopiesOf]  # by restore point id, every location
    remote_copy_details: DataLoader[RemoteCopy, RemoteCopy]  # the copy with its metadata read
    verifications: DataLoader[tuple[VerifiedKind, str], Verification | None]  # by (kind, subject id)


def make_loaders(services: Services) -> Loaders:
    async def restore_points(ids: Sequence[str]) -> list[RestorePoint | None]:
        found = await services.restore_points.get_many(ids)
        return [found.get(point_id) for point_id in ids]

    async def local_copies(ids: Sequence[str]) -> list[LocalCopy | None]:
        found = await services.local_copies.get_many(ids)
        return [found.get(copy_id) for copy_id in ids]

    async def local_copies_of(point_ids: Sequence[str]) -> list[list[LocalCopy]]:
        every = await services.local_copies.list()  # one look at the folder for the whole batch
        return [[copy for copy in every if copy.restore_point_id == point_id] for point_id in point_ids]

    async def remote_copies_of(point_ids: Sequence[str]) -> list[CopiesOf]:
        assert services.locations is not None
        return await services.locations.copies_of(point_ids)  # one listing per location for the batch

    async def remote_copy_details(copies: Sequence[RemoteCopy]) -> list[RemoteCopy]:
        assert services.locations is not None
        return await services.locations.details(copies)  # S3: the HEADs of a whole listing at once

    async def verifications(keys: Sequence[tuple[VerifiedKind, str]]) -> list[Verification | None]:
        found: dict[tuple[VerifiedKind, str], Verification] = {}
        for kind in {kind for kind, _ in keys}:
            ids = [subject for k, subject in keys if k is kind]
            found |= {(kind, i): v for i, v in (await services.verification.of(kind, ids)).items()}
        return [found.get(key) for key in keys]

    return Loaders(
        restore_points=DataLoader(load_fn=restore_points, cache=False),
        local_copies=DataLoader(load_fn=local_copies, cache=False),
        local_copies_of=DataLoader(load_fn=local_copies_of, cache=False),
        remote_copies_of=DataLoader(load_fn=remote_copies_of, cache=False),
        remote_copy_details=DataLoader(load_fn=remote_copy_details, cache=False),
        verifications=DataLoader(load_fn=verifications, cache=False),
    )
