"""Start-up objects frozen out of the cyclic collector."""

from __future__ import annotations

import gc

from server.gc_tuning import freeze_long_lived


def test_freezing_leaves_what_exists_now_out_of_collections() -> None:
    gc.unfreeze()
    try:
        freeze_long_lived()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[0] < 100  # collected just before: the young generation is empty
    finally:
        gc.unfreeze()
