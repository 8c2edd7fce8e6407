"""What a verification run reads and writes, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.clock import Clock
from server.operations.holds import HoldRegistry
from server.services.blob_keeper import BlobKeeper
from server.services.local_copies.encryption import CopyEncryption
from server.storage.blobs.content_store import ContentStore
from server.storage.db.database import Database
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.locations.store import LocationStore
from server.test_seams import StepControl


@dataclass
class Tools:
    """What a run reads and writes."""

    db: Database
    store: ContentStore
    keeper: BlobKeeper
    folder: LocalCopyFolder
    encryption: CopyEncryption
    holds: HoldRegistry
    clock: Clock
    steps: StepControl
    locations: Mapping[str, LocationStore] = field(default_factory=dict)
