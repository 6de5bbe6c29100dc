"""tune_collector: a serving process's collector pace (run in a child: it changes the process)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from porch.server.gc_tuning import tune_collector
before = gc.get_threshold()
tune_collector(0)
assert gc.get_threshold() == before and gc.get_freeze_count() == 0
tune_collector(50_000)
assert gc.get_threshold() == (50_000, before[1], before[2]), gc.get_threshold()
assert gc.get_freeze_count() > 0
# cycles are still collected
class Node:
    pass
a = Node(); a.self = a
del a
assert gc.collect() >= 1
print("ok")
"""


def test_the_threshold_is_raised_and_start_up_frozen_and_cycles_still_go() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "ok"
