"""The collector settings the server runs with (tried in a process of its own)."""

from __future__ import annotations

import json
import subprocess
import sys

from server.gc_tuning import YOUNG_THRESHOLD

PROBE = """
import gc, json
from server.gc_tuning import tune_for_serving
before = gc.get_threshold()
tune_for_serving()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_young_collections_are_rarer_and_start_up_objects_are_frozen() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    probe = json.loads(out)
    assert probe["after"] == [YOUNG_THRESHOLD, *probe["before"][1:]]
    assert probe["frozen"] > 1000
