"""Held envelopes handed over once per event-loop tick, for every connection at once (issue 10).

A group message announces one envelope to each of up to 1,000 connections in one tick (the
message service posts them from its batch's callback). Each connection holds its envelope
(gateway/window.py) and asks to be flushed once the tick's callbacks have run: here that is
one `call_soon` and one update of the delivery-latency histogram for all of them, where each
connection's own `call_soon` and `observe` cost a loop handle and a histogram lock per device.
A connection whose flush fails is logged and the others still get theirs (a bad input fails
alone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import Histogram

from porch.failures import log_failure
from porch.server.metrics import observe_all

log = logging.getLogger("porch.gateway")

#: A connection's flush: appends the latency (seconds) of each envelope it hands over.
Flush = Callable[[list[float]], None]


class HandOver:
    __slots__ = ("_due", "_latency")

    def __init__(self, latency: Histogram) -> None:
        self._latency = latency
        self._due: list[Flush] = []

    def due(self, flush: Flush) -> None:
        """flush runs once this tick's callbacks have (each caller asks once per tick)."""
        if not self._due:
            asyncio.get_running_loop().call_soon(self._run)
        self._due.append(flush)

    def _run(self) -> None:
        due, self._due = self._due, []
        latencies: list[float] = []
        for flush in due:
            try:
                flush(latencies)
            except Exception as exc:  # one connection's failure never holds up the others
                log_failure(log, "handing over held envelopes failed", exc=exc)
        if latencies:
            observe_all(self._latency, latencies)
