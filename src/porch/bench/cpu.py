"""CPU per delivered message: the server's, split by thread, and the load generator's own.

Issue 10 asks every target to be read by what a delivered message costs the server (its CPU
time over the measured phase, user + system, divided by the messages delivered in it), and a
run whose load generator ran out of CPU to be flagged as such: its msgs/s is then the load
generator's limit as much as the target's.

Threads (Linux, psutil's per-thread times): the main thread is the event loop (tid = pid); on a
SQLite node the busiest other Python thread is the store's group-commit thread ("porch-sqlite",
server/store/sqlite.py: the only thread that does work per message; the others wait in
``queue.get`` or are uvloop's ``libuv-worker`` pool). Python 3.11 does not give a thread's name
to the OS, so it is identified by being the busiest one, not by name.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil  # type: ignore[import-untyped, unused-ignore]

if TYPE_CHECKING:  # stats.py imports this module
    from porch.bench.stats import PhaseFigures
    from porch.bench.targets import Target

#: A load process above this fraction of its CPU share was the run's limit (or one of them).
CLIENT_BOUND = 0.9
#: Other processes above this % of one core during a phase make its rates incomparable.
BUSY_MACHINE_PCT = 25.0
LIBUV_POOL = "libuv-worker"


@dataclass(frozen=True)
class ThreadTimes:
    """CPU seconds of each thread of one process, with its OS-level name."""

    pid: int
    seconds: dict[int, float]
    names: dict[int, str]


def thread_times(proc: Any) -> ThreadTimes:
    seconds: dict[int, float] = {}
    names: dict[int, str] = {}
    with contextlib.suppress(psutil.Error):
        for t in proc.threads():
            seconds[t.id] = t.user_time + t.system_time
            try:
                with open(f"/proc/{proc.pid}/task/{t.id}/comm") as f:
                    names[t.id] = f.read().strip()
            except OSError:
                names[t.id] = ""
    return ThreadTimes(proc.pid, seconds, names)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (not idle, not waiting for I/O)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def split_threads(before: ThreadTimes, after: ThreadTimes) -> dict[str, float]:
    """CPU seconds between two readings: ``main`` (the event loop), ``busiest`` (the busiest other
    thread outside uvloop's pool) and ``other``. A thread that started in between counts from
    zero; one that ended in between is lost (none does during a phase)."""
    used = {tid: s - before.seconds.get(tid, 0.0) for tid, s in after.seconds.items()}
    main = used.pop(after.pid, 0.0)
    candidates = [tid for tid in used if not after.names.get(tid, "").startswith(LIBUV_POOL)]
    busiest = max(candidates, key=lambda tid: used[tid], default=None)
    top = used.pop(busiest, 0.0) if busiest is not None else 0.0
    return {"main": main, "busiest": top, "other": sum(used.values())}


def per_message(server: PhaseFigures, delivered: int, kind: str) -> dict[str, Any]:
    """``server_cpu_us_per_msg`` and its split by thread (``server_threads_us_per_msg``) from
    the server's figures over the measured phase."""
    if delivered <= 0:
        return {"server_cpu_us_per_msg": None, "server_threads_us_per_msg": {}}
    threads = server.threads_cpu_s
    split = {"event_loop": threads.get("main", 0.0)}
    if kind.startswith("sqlite"):  # sqlite, sqlite-websockets (targets.SQLITE_STACKS)
        split["sqlite_writer"] = threads.get("busiest", 0.0)
        split["other"] = threads.get("other", 0.0)
    else:
        split["other"] = threads.get("busiest", 0.0) + threads.get("other", 0.0)
    out: dict[str, Any] = {
        "server_cpu_us_per_msg": round(1e6 * server.cpu_s / delivered, 1),
        "server_threads_us_per_msg": {k: round(1e6 * v / delivered, 1) for k, v in split.items()},
    }
    if server.services_cpu_s:
        out["services_us_per_msg"] = {
            k: round(1e6 * v / delivered, 1) for k, v in server.services_cpu_s.items()
        }
    return out


def load_figures(
    process_cpu_s: list[float], wall_s: float, server_processes: int, cpus: int | None = None
) -> dict[str, Any]:
    """The load generator's CPU over a phase of ``wall_s``: in all, per process, and whether it
    was client-bound.

    A load process (one event loop) can use one core at most, and when the load processes and
    the server's processes outnumber the cores, an even share of the machine each: a process
    above 90% of ``min(1 core, cores / (load processes + server processes))`` had no CPU left
    to offer more load, so the target's figure is a lower bound."""
    cpus = cpus or os.cpu_count() or 1
    wall = max(1e-9, wall_s)
    procs = max(1, len(process_cpu_s))
    per_process = [round(100 * c / wall, 1) for c in process_cpu_s]
    share = round(100 * min(1.0, cpus / (procs + max(0, server_processes))), 1)
    return {
        "processes": len(process_cpu_s),
        "cpu_s": round(sum(process_cpu_s), 3),
        "cpu_pct": round(100 * sum(process_cpu_s) / wall, 1),
        "per_process_cpu_s": [round(c, 3) for c in process_cpu_s],
        "per_process_cpu_pct": per_process,
        "share_pct": share,
        "client_bound": max(per_process, default=0.0) > CLIENT_BOUND * share,
    }


def client_bound_note(load: dict[str, Any]) -> str:
    busiest = max(load.get("per_process_cpu_pct") or [0.0])
    return (
        f"client-bound: the busiest load process used {busiest:.0f}% of a core against its "
        f"share of {load['share_pct']:.0f}% ({load['processes']} load process(es)); the "
        "figures are the load generator's limit as much as the target's: try --procs 2"
    )


def figures(
    server: PhaseFigures, load_cpu_s: list[float], wall_s: float, delivered: int, target: Target
) -> dict[str, Any]:
    """The CPU fields of a scenario's result: server µs per delivered message (in all and by
    thread), ``load`` (the load generator's CPU, ``client_bound``) and what other processes on
    the machine used meanwhile; ``target`` is the one the phase ran on."""
    return per_message(server, delivered, target.kind) | {
        "load": load_figures(load_cpu_s, wall_s, len(target.nodes)),
        "machine_others_pct": others_pct(server, load_cpu_s),
    }


def others_pct(server: PhaseFigures, load_cpu_s: list[float]) -> float:
    """What processes other than the server (with its services) and the load generator used
    during the phase, in % of one core: on a shared machine the rates (msgs/s, latency) of such
    a run are not the target's own, while its CPU per message still is (it counts only the
    server's time)."""
    ours = server.cpu_s + sum(load_cpu_s) + sum(server.services_cpu_s.values())
    return round(max(0.0, server.machine_busy_pct - 100 * ours / max(1e-9, server.wall_s)), 1)


def busy_machine_note(pct: float) -> str:
    return (
        f"the machine was busy: other processes used {pct:.0f}% of a core during the measured "
        "phase; msgs/s and latency are not comparable with a quiet run (CPU per message is)"
    )
