"""The processes a cluster target uses besides its nodes: its PostgreSQL database's backends,
the PostgreSQL server's background processes, and Redis, so that a message's cost on a cluster
is known for each of them (issue 10: "server CPU µs per message for the node and for PostgreSQL
and Redis themselves"), even where 2 cores cannot show the cluster's throughput.

Found with psutil by process title, so only when PostgreSQL and Redis run on this machine (the
default, 127.0.0.1; elsewhere the groups are empty and no figure is reported): a backend's title
is ``postgres: <cluster>: <user> <database> <client> <state>`` (PostgreSQL's
``update_process_title``, on by default), and Redis's command line names its port. The
background processes and Redis serve whatever else uses them on the machine too: their figures
are an upper bound for this run.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

#: Titles of the PostgreSQL server's own processes that work for every database (WAL, buffers).
PG_BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum launcher")


def service_pids(database: str, redis_port: int) -> dict[str, list[int]]:
    """``postgresql`` (the backends connected to ``database``), ``postgresql_background`` and
    ``redis`` (the server listening on ``redis_port``): pids, now."""
    out: dict[str, list[int]] = {"postgresql": [], "postgresql_background": [], "redis": []}
    for proc in psutil.process_iter(["name", "cmdline"]):
        info: dict[str, Any] = proc.info
        name = str(info.get("name") or "")
        title = " ".join(info.get("cmdline") or [])
        if name.startswith("postgres"):
            if database in title.split():
                out["postgresql"].append(proc.pid)
            elif any(kind in title for kind in PG_BACKGROUND):
                out["postgresql_background"].append(proc.pid)
        elif name.startswith("redis-server") and f":{redis_port}" in title:
            out["redis"].append(proc.pid)
    return out


def cpu_seconds(pids: list[int]) -> dict[int, tuple[float, float]]:
    """pid -> (CPU seconds so far, creation time) of each pid that still exists."""
    out: dict[int, tuple[float, float]] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            out[pid] = (t.user + t.system, proc.create_time())
    return out


def used(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], since: float
) -> float:
    """CPU seconds a group used between two readings: a process that started after ``since``
    (epoch seconds: a backend the pool opened during the phase) counts from its start; one that
    was there but not seen at the first reading, or ended before the second, is left out."""
    total = 0.0
    for pid, (seconds, created) in after.items():
        if pid in before:
            total += seconds - before[pid][0]
        elif created >= since:
            total += seconds
    return total
