"""The cyclic garbage collector and the objects a server keeps for its whole life."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Leave everything made at start-up out of the cyclic collector's full collections.

    The modules, the schema, the engine and the services live as long as the process, yet
    each full collection scans all of them again. Capturing a tree of tens of thousands of
    files makes several objects per file, enough for a few full collections, and those
    cost about as much as the capture's own work did. Objects are still freed as usual when
    nothing refers to them; start-up garbage is collected first, so none of it is kept.
    """
    gc.collect()
    gc.freeze()
