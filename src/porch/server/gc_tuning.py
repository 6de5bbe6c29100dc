"""The cyclic garbage collector's pace in a serving process (issue 10, fan-out).

CPython starts a young-generation collection every 700 net allocations of container objects
and a full one every hundred of those (when a quarter more objects than the last full one
left have survived). A group message to 1,000 devices allocates tens of thousands of small
objects (the parsed send, a stored envelope and a bus event per device, the ack frames) that
live for a few milliseconds, long enough to be caught alive by a young collection and moved
to the older generations; a full collection then walks every object of every connection.
Measured on `porch bench fanout --devices 1000` (docs/performance.md, "Fan-out to 1,000
devices"): about a third of the server's CPU went to the collector. Nearly all of those
objects are freed by reference counting; the collector is only needed for cycles.

So a serving process (`porch serve`, each of its workers) moves what start-up made (modules,
the app, its routes and models: never garbage) out of the collector's sight (`gc.freeze`),
and runs the young collection every `gc_threshold` allocations instead of 700: a burst's
short-lived objects are then mostly gone before a collection sees them. Cycles are still
collected, only later; the memory that can wait for it is bounded by the threshold (tens of
thousands of small objects, a few MB). 0 leaves Python's own thresholds alone.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("porch.server")


def tune_collector(threshold: int) -> None:
    """For a process that serves from here on (call once, after the app is built)."""
    if threshold <= 0:
        return
    gc.collect()  # start-up's own garbage goes now, not into the frozen set
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    log.debug("garbage collector: young generation every %d allocations", threshold)
