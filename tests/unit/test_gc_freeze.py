"""Start-up objects frozen out of the cyclic collector."""

from __future__ import annotations

import gc
import weakref

from server.gc_tuning import freeze_long_lived


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_freezing_leaves_what_exists_now_out_of_collections() -> None:
    """What exists when it is called leaves the collector's generations (gc.get_objects lists
    only those), and start-up garbage is collected first, not frozen. Checked on objects of the
    test's own: the young generation's count moves with whatever other threads of this process
    (an earlier test's server) allocate meanwhile."""
    gc.unfreeze()
    was_enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between: only freeze_long_lived's own
    try:
        kept = [object()]  # a tracked container that lives on
        garbage = weakref.ref(_Node())
        assert garbage() is not None  # only a collection frees the cycle
        freeze_long_lived()
        assert gc.get_freeze_count() > 0
        assert all(o is not kept for o in gc.get_objects()), "what existed was not frozen"
        assert garbage() is None, "start-up garbage was frozen instead of collected"
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
