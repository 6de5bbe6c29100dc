"""HandOver: one tick's flushes from every connection, one callback and one histogram update."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram

from porch.server.gateway.handover import HandOver


def _histogram() -> Histogram:
    return Histogram("t_latency", "test", registry=CollectorRegistry(), buckets=(0.01, 1.0))


def _count(h: Histogram) -> float:
    for metric in h.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    raise AssertionError("no _count sample")


async def test_a_ticks_flushes_run_once_after_it_in_order_and_a_failing_one_alone() -> None:
    h = _histogram()
    handover = HandOver(h)
    ran: list[str] = []

    def flush(name: str, waited: float):  # type: ignore[no-untyped-def]
        def run(latencies: list[float]) -> None:
            ran.append(name)
            latencies.append(waited)

        return run

    def broken(latencies: list[float]) -> None:
        ran.append("broken")
        raise RuntimeError("this connection's socket is gone")

    handover.due(flush("a", 0.005))
    handover.due(broken)
    handover.due(flush("b", 0.5))
    assert ran == []  # not before the tick's callbacks have run
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ran == ["a", "broken", "b"]
    assert _count(h) == 2  # both latencies that were handed over, in one update
    handover.due(flush("c", 0.1))  # the next tick gets its own callback
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ran[-1] == "c" and _count(h) == 3
