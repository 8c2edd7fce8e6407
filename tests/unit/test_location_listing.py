"""ListingCache: one listing per location at a time, a bounded wait, and no listing begun
before a write of ours served after it (issue 23 item 10)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from server.model.records import RemoteCopy
from server.services.locations.listing import ListingCache
from server.storage.locations.store import LocationUnavailable


def copy(name: str) -> RemoteCopy:
    return RemoteCopy(
        id=f"rc_{name}",
        location="bucket",
        file_name=name,
        size=1,
        modified_at=datetime.now(UTC),
        encrypted=False,
        restore_point_id=None,
        problem=None,
    )


class Store:
    """A location whose listings block until the test lets them answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.answers: list[threading.Event] = []
        self.names = ["a.zip"]
        self.down = False
        self.started = threading.Event()  # set once a listing is under way (in its thread)

    def list(self) -> list[RemoteCopy]:
        self.calls += 1
        gate = threading.Event()
        self.answers.append(gate)
        self.started.set()
        gate.wait(timeout=30)
        if self.down:
            raise LocationUnavailable("bucket", "refused")
        return [copy(name) for name in self.names]


async def test_reads_share_one_listing_and_a_late_one_is_not_known_then_kept() -> None:
    store = Store()
    cache = ListingCache("bucket", store.list)
    late = await asyncio.gather(*(cache.read(wait=0.05) for _ in range(5)))
    # The listing's thread may start after the 0.05 s a loaded machine took: wait for it, then count.
    assert await asyncio.to_thread(store.started.wait, 30)
    assert store.calls == 1  # five queries, one listing
    assert all(listing.copies is None and "did not answer within 0.05 s" in (listing.problem or "") for listing in late)
    store.answers[0].set()
    answered = await cache.read(wait=10)  # joins the same listing, which answers now
    assert store.calls == 1 and answered.copies is not None and [c.file_name for c in answered.copies] == ["a.zip"]


async def test_a_read_after_a_write_never_joins_a_listing_begun_before_it() -> None:
    store = Store()
    cache = ListingCache("bucket", store.list)
    before = asyncio.ensure_future(cache.read(wait=10))
    await asyncio.sleep(0)
    while store.calls == 0:
        await asyncio.sleep(0.01)
    store.names = ["a.zip", "b.zip"]  # our upload ended meanwhile
    cache.written()
    after = asyncio.ensure_future(cache.read(wait=10))
    while store.calls < 2:
        await asyncio.sleep(0.01)
    store.answers[1].set()
    listed = await after
    assert listed.copies is not None and [c.file_name for c in listed.copies] == ["a.zip", "b.zip"]
    store.answers[0].set()  # the older listing answers last: it does not replace the newer one
    await before
    latest = cache.latest
    assert latest is not None and latest.copies is not None and len(latest.copies) == 2


async def test_an_unavailable_location_says_why() -> None:
    store = Store()
    store.down = True
    cache = ListingCache("bucket", store.list)
    reading = asyncio.ensure_future(cache.read(wait=10))
    while not store.answers:
        await asyncio.sleep(0.01)
    store.answers[0].set()
    listing = await reading
    assert listing.copies is None and listing.problem == "location 'bucket' is unavailable: refused"
