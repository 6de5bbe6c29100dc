"""How long the SQLite writer's batch waits for the GIL while the event loop is busy (issue 10).

python bench/gil_convoy.py --busy 0.9 --switch 0.005,0.001,0.0005 --batches 200

The store thread (store/sqlite.py) runs each batch as a dozen sqlite3 calls, and the sqlite3
module releases the GIL around every prepare and step. While the event-loop thread runs Python,
each time the store thread wants the GIL back it waits until the holder drops it, which CPython
forces only after `sys.getswitchinterval()` (5 ms by default). This reproduces that in one
process: a "loop" thread that is busy a fraction --busy of the time (Python work in 1 ms
slices, idle in between, as an event loop at that load is) and a writer thread that runs the
same statements as one batch of one send (`store_sends`) and one delete (`delete_acks`) in
BEGIN IMMEDIATE ... COMMIT, one batch every 2 ms. It prints the batch's wall time (what a
message waits for its commit) per switch interval: p50, p99, max, and its CPU time.
"""

from __future__ import annotations

import argparse
import base64
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from porch.server.store.records import (
    Acknowledged,
    OutgoingCopy,
    OutgoingDestination,
    OutgoingMessage,
)
from porch.server.store.sqlite import _migrate, is_transient
from porch.server.store.sqlite_batch import delete_acks, store_sends


def busy_loop(stop: threading.Event, busy: float) -> None:
    """Python work in 1 ms slices, idle (GIL released) for the rest of each period."""
    slice_s = 0.001
    idle_s = slice_s * (1 - busy) / busy if busy < 1 else 0.0
    while not stop.is_set():
        end = time.perf_counter() + slice_s
        x = 0
        while time.perf_counter() < end:
            x += 1
        if idle_s:
            time.sleep(idle_s)


def batches(conn: sqlite3.Connection, n: int) -> tuple[list[float], float]:
    body = base64.b64encode(os.urandom(300)).decode()
    walls: list[float] = []
    cpu0 = time.thread_time()
    pending: list[int] = []
    for i in range(n):
        now = 1_700_000_000_000 + i
        to = OutgoingDestination("recv", (OutgoingCopy(1, 1, body),))
        send = OutgoingMessage("send", 1, f"m{i}", (to,), None, now, now + 86_400_000)
        w0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SAVEPOINT op")
        [stored] = store_sends(conn, [send], is_transient)
        conn.execute("RELEASE op")
        if pending:
            conn.execute("SAVEPOINT op")
            delete_acks(conn, [Acknowledged("recv", 1, pending)], is_transient)
            conn.execute("RELEASE op")
        conn.execute("COMMIT")
        walls.append(time.perf_counter() - w0)
        assert not isinstance(stored, Exception)
        pending = [e.id for e in stored.envelopes]
        time.sleep(0.002)
    return walls, time.thread_time() - cpu0


def _collect(into: list[tuple[list[float], float]], conn: sqlite3.Connection, n: int) -> None:
    into.append(batches(conn, n))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--busy", type=float, default=0.9, help="the loop thread's busy fraction")
    p.add_argument("--switch", default="0.005,0.001,0.0005", help="switch intervals, seconds")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    print(f"loop busy {a.busy:.0%}; batch wall time in ms (one send + one delete, one commit)")
    for _ in range(a.rounds):
        for interval in [float(s) for s in a.switch.split(",")]:
            sys.setswitchinterval(interval)
            with tempfile.TemporaryDirectory() as tmp:
                conn = sqlite3.connect(
                    Path(tmp) / "porch.db", isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA secure_delete=ON")
                _migrate(conn)
                stop = threading.Event()
                loop = threading.Thread(target=busy_loop, args=(stop, a.busy))
                loop.start()
                result: list[tuple[list[float], float]] = []
                writer = threading.Thread(target=_collect, args=(result, conn, a.batches))
                writer.start()
                writer.join()
                stop.set()
                loop.join()
                conn.close()
            walls, cpu = result[0]
            ms = sorted(w * 1000 for w in walls)
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(
                f"switch {interval * 1000:5.2f} ms: p50 {statistics.median(ms):6.2f}"
                f"  p99 {p99:6.2f}  max {ms[-1]:6.2f}"
                f"  cpu/batch {cpu / len(walls) * 1e6:6.0f} µs"
            )


if __name__ == "__main__":
    main()
