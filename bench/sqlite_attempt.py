"""A/B of the store thread's batch with and without savepoints (issue 10).

python bench/sqlite_attempt.py

Runs one store call of sends (`store_sends`) and one of the previous batch's deletes
(`delete_acks`) per transaction, through `sqlite._attempt` (a savepoint per call, as before)
and through `_Executor._attempt` (no savepoints while every call succeeds), interleaved, five
rounds per batch size, and prints this thread's CPU µs per message: median and each round.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from porch.server.store import sqlite as store_sqlite
from porch.server.store.records import (
    Acknowledged,
    OutgoingCopy,
    OutgoingDestination,
    OutgoingMessage,
)
from porch.server.store.sqlite_batch import delete_acks, store_sends


def run(mode: str, batch: int, messages: int = 6000) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "porch.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA secure_delete=ON")
        store_sqlite._migrate(conn)
        executor = store_sqlite._Executor(Path(tmp) / "unused.db", "NORMAL", 5000)
        body = base64.b64encode(os.urandom(300)).decode()
        pending: list[int] = []
        seq = 0
        t0 = time.thread_time()
        for _ in range(messages // batch):
            sends = []
            for _ in range(batch):
                seq += 1
                now = 1_700_000_000_000 + seq
                to = OutgoingDestination("r", (OutgoingCopy(1, 1, body),))
                sends.append(OutgoingMessage("s", 1, f"m{seq}", (to,), None, now, now + 86_400_000))
            ops: list[tuple[Any, Any]] = [
                (lambda c, s=sends: store_sends(c, s, store_sqlite.is_transient), None)
            ]
            if pending:
                acks = [Acknowledged("r", 1, pending)]
                ops.append((lambda c, a=acks: delete_acks(c, a, store_sqlite.is_transient), None))
            if mode == "isolated":
                out = store_sqlite._attempt(conn, ops)
            else:
                out = executor._attempt(conn, ops)
            pending = [e.id for s in out[0][1] for e in s.envelopes]
        spent = time.thread_time() - t0
        conn.close()
    return spent / ((messages // batch) * batch) * 1e6


def main() -> None:
    for batch in (1, 2, 64):
        runs: dict[str, list[float]] = {"isolated": [], "together": []}
        for _ in range(5):
            for mode, values in runs.items():
                values.append(run(mode, batch))
        print(
            f"batch {batch}: "
            + "; ".join(
                f"{m} {statistics.median(v):.1f} ({', '.join(f'{x:.1f}' for x in v)})"
                for m, v in runs.items()
            )
        )


if __name__ == "__main__":
    main()
