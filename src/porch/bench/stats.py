"""Figures: percentiles, time series, and CPU / memory of the server and load processes.

:class:`ProcessSampler` watches a set of processes (the server's, with their children) from a
thread with psutil: CPU time is read at the start and end of the measured phase, so the CPU
figure is exact over that phase; RSS is sampled every ``interval`` seconds for the peak and for
the time series drawn in the PNG. Per process (each watched pid with its children) and per
thread of each watched process, CPU time is read at the same two instants (cpu.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

from porch.bench import services
from porch.bench.cpu import ThreadTimes, machine_busy_seconds, split_threads, thread_times

MB = 1024 * 1024


def percentile(sorted_values: Sequence[int] | array[int], q: float) -> float:
    """Nearest-rank percentile of sorted values (same unit); NaN when empty."""
    n = len(sorted_values)
    if not n:
        return float("nan")
    rank = max(1, min(n, int(-(-q * n // 100))))
    return float(sorted_values[rank - 1])


def latency_summary(latencies_us: array[int]) -> dict[str, float]:
    """p50/p90/p95/p99/max in ms of microsecond samples (sorted here)."""
    values = array("q", sorted(latencies_us))
    out = {f"p{q}": percentile(values, q) / 1000 for q in (50, 90, 95, 99)}
    out["max"] = values[-1] / 1000 if values else float("nan")
    out["count"] = float(len(values))
    return out


def time_series(
    recv_ns: array[int], latencies_us: array[int], start_ns: int, buckets: int = 60
) -> dict[str, list[float]]:
    """Throughput (msgs/s) and latency p50/p99 (ms) per time bucket after ``start_ns``."""
    if not recv_ns:
        return {"t_s": [], "msgs_per_s": [], "p50_ms": [], "p99_ms": []}
    end = max(recv_ns)
    span = max(1, end - start_ns)
    width = max(span / buckets, 50_000_000)  # at least 50 ms per bucket
    n = int(span // width) + 1
    groups: list[list[int]] = [[] for _ in range(n)]
    for t, lat in zip(recv_ns, latencies_us, strict=True):
        groups[max(0, min(n - 1, int((t - start_ns) // width)))].append(lat)
    series: dict[str, list[float]] = {"t_s": [], "msgs_per_s": [], "p50_ms": [], "p99_ms": []}
    for i, g in enumerate(groups):
        g.sort()
        series["t_s"].append(round((i + 0.5) * width / 1e9, 3))
        series["msgs_per_s"].append(round(len(g) / (width / 1e9), 1))
        series["p50_ms"].append(percentile(g, 50) / 1000 if g else float("nan"))
        series["p99_ms"].append(percentile(g, 99) / 1000 if g else float("nan"))
    return series


def _tree(pids: Iterable[int]) -> list[Any]:
    procs: list[Any] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            procs.append(p)
            procs.extend(p.children(recursive=True))
    return procs


def _cpu_seconds(procs: Iterable[Any]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _rss(procs: Iterable[Any]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += int(p.memory_info().rss)
    return total


@dataclass
class PhaseFigures:
    cpu_pct: float  # % of one core over the phase, all processes summed
    peak_rss_mb: float
    rss_start_mb: float
    rss_end_mb: float
    wall_s: float
    cpu_s: float = 0.0  # CPU seconds (user + system) over the phase, all processes
    process_cpu_s: list[float] = field(default_factory=list)  # per watched pid, with children
    # Summed over the watched processes' own threads: main, busiest, other (cpu.split_threads).
    threads_cpu_s: dict[str, float] = field(default_factory=dict)
    machine_busy_pct: float = 0.0  # every process on the machine, % of one core (cpu.py)
    # CPU seconds of the target's services (services.py: PostgreSQL, Redis), by group.
    services_cpu_s: dict[str, float] = field(default_factory=dict)


@dataclass
class ProcessSampler:
    """Samples CPU and RSS of ``pids`` (and their children) in a background thread; with
    ``services``, which names the pids of each of the target's services (PostgreSQL, Redis),
    their CPU over the measured phase too."""

    pids: list[int]
    interval: float = 0.25
    services: Callable[[], dict[str, list[int]]] | None = None
    series: list[tuple[float, float, float]] = field(default_factory=list)  # t, cpu %, rss MB
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _peak: int = 0
    _phase: tuple[float, float, int] | None = None  # monotonic, cpu s, rss at mark_start
    _machine0: float = 0.0  # the machine's busy CPU seconds at mark_start
    _services0: dict[str, dict[int, tuple[float, float]]] = field(default_factory=dict)
    _epoch0: float = 0.0  # time.time() at mark_start
    _t0: float = 0.0
    # Per watched pid at mark_start: CPU seconds of its tree, its own threads' times.
    _per_pid: list[tuple[float, ThreadTimes | None]] = field(default_factory=list)

    def __enter__(self) -> ProcessSampler:
        self._t0 = time.monotonic()
        self._procs = _tree(self.pids)
        self._trees = [_tree([pid]) for pid in self.pids]
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        last_t, last_cpu = time.monotonic(), _cpu_seconds(self._procs)
        while not self._stop.wait(self.interval):
            now, cpu, rss = time.monotonic(), _cpu_seconds(self._procs), _rss(self._procs)
            self._peak = max(self._peak, rss)
            pct = 100 * (cpu - last_cpu) / max(1e-9, now - last_t)
            self.series.append((round(now - self._t0, 3), round(pct, 1), round(rss / MB, 1)))
            last_t, last_cpu = now, cpu

    def rss_mb(self) -> float:
        return _rss(self._procs) / MB

    def mark_start(self) -> None:
        """Start of the measured phase; resets the peak."""
        rss = _rss(self._procs)
        self._peak = rss
        self._per_pid = [(_cpu_seconds(t), thread_times(t[0]) if t else None) for t in self._trees]
        self._machine0 = machine_busy_seconds()
        self._phase = (time.monotonic(), _cpu_seconds(self._procs), rss)
        # Last: finding the services' processes takes a few ms, and the server comes first.
        self._epoch0 = time.time()
        found = self.services() if self.services else {}
        self._services0 = {group: services.cpu_seconds(pids) for group, pids in found.items()}

    def mark_end(self) -> PhaseFigures:
        if self._phase is None:
            raise RuntimeError("mark_end() without mark_start()")
        t0, cpu0, rss0 = self._phase
        cpu = _cpu_seconds(self._procs) - cpu0
        machine = machine_busy_seconds() - self._machine0
        wall = max(1e-9, time.monotonic() - t0)
        rss = _rss(self._procs)
        self._peak = max(self._peak, rss)
        found = self.services() if self.services else {}
        services_cpu = {
            group: services.used(
                self._services0.get(group, {}), services.cpu_seconds(pids), self._epoch0
            )
            for group, pids in found.items()
        }
        threads = {"main": 0.0, "busiest": 0.0, "other": 0.0}
        per_process: list[float] = []
        for tree, (tree_cpu0, before) in zip(self._trees, self._per_pid, strict=True):
            per_process.append(round(_cpu_seconds(tree) - tree_cpu0, 3))
            if before is not None:
                for role, seconds in split_threads(before, thread_times(tree[0])).items():
                    threads[role] += seconds
        return PhaseFigures(
            cpu_pct=round(100 * cpu / wall, 1),
            peak_rss_mb=round(self._peak / MB, 1),
            rss_start_mb=round(rss0 / MB, 1),
            rss_end_mb=round(rss / MB, 1),
            wall_s=round(wall, 3),
            cpu_s=round(cpu, 3),
            process_cpu_s=per_process,
            threads_cpu_s={k: round(v, 3) for k, v in threads.items()},
            machine_busy_pct=round(100 * machine / wall, 1),
            services_cpu_s={k: round(v, 3) for k, v in services_cpu.items()},
        )

    def series_dict(self) -> dict[str, list[float]]:
        return {
            "t_s": [s[0] for s in self.series],
            "cpu_pct": [s[1] for s in self.series],
            "rss_mb": [s[2] for s in self.series],
        }
