"""Garbage-collector settings for a server that holds many connections.

With a thousand websockets open the heap holds some 400,000 tracked objects, and CPython's
default thresholds (700, 10, 10) promote every object alive at one of its frequent young
collections, e.g. each subscriber's pending wait while a log line fans out. Promoted
objects soon trigger a full collection that walks the whole heap: 150-400 ms during which
no subscriber gets anything (measured with the websockets benchmark). Collecting the young
generation every 10,000 objects instead of 700 promotes far fewer of those short-lived
objects, so full collections become rare; each young collection stays around a millisecond.
What exists at start-up (modules, the schema) is frozen out of the collector's walks.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Call once, after the app is built and before it serves."""
    freeze_long_lived()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_long_lived() -> None:
    """Leave everything that exists now out of the collector's walks: call when what was
    made lives as long as the process (at start-up, and again once the services are open).

    The modules, the schema, the engine and the services are never garbage, yet each full
    collection scans all of them again: that made the slowest requests of a listing under
    load (p99 ~55 ms with, ~15 ms without), and a few full collections during the capture
    of a tree of tens of thousands of files cost about as much as the capture's own work.
    Start-up garbage is collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()
