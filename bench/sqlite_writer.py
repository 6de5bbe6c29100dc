"""The SQLite writer's CPU per message, by phase and by schema/pragma variant (issue 10).

python bench/sqlite_writer.py --batch 1,2,64 --variants base,fast,noexp,sentwr --rounds 3

Runs the store thread's own hot writes (store/sqlite_batch.py: `store_sends`, then the previous
batch's `delete_acks`, in one `BEGIN IMMEDIATE` ... `COMMIT` with the savepoints `_attempt`
gives each call) on a database migrated exactly as `porch serve` migrates it, on this thread,
with no event loop and no server: what the `sqlite_writer` thread of `porch bench pairs` costs,
without the GIL hand-offs. Each message is one 1:1 send of a 300-byte body to one device, acked
one batch later. The figure is this thread's CPU time (`time.thread_time`) per message, split
into the sends, the deletes and BEGIN/savepoints/COMMIT (txn), and of that the COMMIT alone.
Variants (combine with '+'):

- base: the schema and pragmas of `porch serve` (secure_delete=ON, synchronous=NORMAL)
- fast / sdoff: secure_delete=FAST / OFF
- noexp: without the envelopes_expiry index
- nosentexp: without the sent_messages_expiry index
- sentwr: sent_messages as a WITHOUT ROWID table (one b-tree for the row and its key)
- syncoff: synchronous=OFF (not a setting Porch offers: the floor of the commit's cost)

Variants run interleaved, round after round, so that a busy machine slows them alike; the
median over the rounds is printed.
"""

from __future__ import annotations

import argparse
import base64
import os
import sqlite3
import statistics
import tempfile
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

SENT_WITHOUT_ROWID = (
    "CREATE TABLE sent_messages (sender_account TEXT NOT NULL, sender_device INTEGER NOT NULL,"
    " client_id TEXT NOT NULL, ts BIGINT NOT NULL, expires BIGINT NOT NULL,"
    " PRIMARY KEY (sender_account, sender_device, client_id)) WITHOUT ROWID"
)
PAIRS = 4
RETENTION_MS = 30 * 86_400_000


def _open(directory: Path, variant: set[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(directory / "porch.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=" + ("OFF" if "syncoff" in variant else "NORMAL"))
    conn.execute("PRAGMA foreign_keys=ON")
    secure = "FAST" if "fast" in variant else "OFF" if "sdoff" in variant else "ON"
    conn.execute(f"PRAGMA secure_delete={secure}")
    _migrate(conn)
    if "noexp" in variant:
        conn.execute("DROP INDEX envelopes_expiry")
    if "sentwr" in variant:
        conn.execute("DROP TABLE sent_messages")
        conn.execute(SENT_WITHOUT_ROWID)
        conn.execute("CREATE INDEX sent_messages_expiry ON sent_messages (expires)")
    if "nosentexp" in variant:
        conn.execute("DROP INDEX IF EXISTS sent_messages_expiry")
    return conn


def run(variant: set[str], batch: int, messages: int) -> dict[str, float]:
    """CPU µs per message: total, sends, deletes, and the transaction around them."""
    body = base64.b64encode(os.urandom(300)).decode()
    with tempfile.TemporaryDirectory() as tmp:
        conn = _open(Path(tmp), variant)
        spent = {"sends": 0.0, "deletes": 0.0, "commit": 0.0}
        pending: list[tuple[str, int, int]] = []
        seq = 0
        t0 = time.thread_time()
        for _ in range(messages // batch):
            sends = []
            for _ in range(batch):
                seq += 1
                now = 1_700_000_000_000 + seq
                to = OutgoingDestination(f"recv{seq % PAIRS}", (OutgoingCopy(1, 1, body),))
                sends.append(
                    OutgoingMessage(
                        f"send{seq % PAIRS}", 1, f"m{seq}", (to,), None, now, now + RETENTION_MS
                    )
                )
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("SAVEPOINT op")
            s0 = time.thread_time()
            stored = store_sends(conn, sends, is_transient)
            spent["sends"] += time.thread_time() - s0
            conn.execute("RELEASE op")
            if pending:
                by_device: dict[tuple[str, int], list[int]] = {}
                for account, device, envelope_id in pending:
                    by_device.setdefault((account, device), []).append(envelope_id)
                acks = [Acknowledged(a, d, ids) for (a, d), ids in by_device.items()]
                conn.execute("SAVEPOINT op")
                d0 = time.thread_time()
                outcomes = delete_acks(conn, acks, is_transient)
                spent["deletes"] += time.thread_time() - d0
                conn.execute("RELEASE op")
                if any(isinstance(o, Exception) for o in outcomes):
                    raise RuntimeError(f"a delete failed: {outcomes}")
            c0 = time.thread_time()
            conn.execute("COMMIT")
            spent["commit"] += time.thread_time() - c0
            pending = [
                (e.account_id, e.device_id, e.id)
                for s in stored
                if not isinstance(s, Exception)
                for e in s.envelopes
            ]
        total = time.thread_time() - t0
        conn.close()
    n = (messages // batch) * batch
    us = {k: v / n * 1e6 for k, v in spent.items()}
    us["total"] = total / n * 1e6
    us["txn"] = us["total"] - us["sends"] - us["deletes"]  # BEGIN, savepoints and COMMIT
    return us


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", default="1,2,64", help="messages per transaction, comma-separated")
    p.add_argument("--variants", default="base,fast,noexp,sentwr")
    p.add_argument("--messages", type=int, default=20_000, help="per run")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    batches = [int(b) for b in a.batch.split(",")]
    variants = a.variants.split(",")
    runs: dict[tuple[int, str], list[dict[str, float]]] = {}
    for _ in range(a.rounds):
        for b in batches:
            for v in variants:
                runs.setdefault((b, v), []).append(run(set(v.split("+")), b, a.messages))
    print(
        f"{'batch':>5}  {'variant':<24} {'total':>7} {'sends':>7} {'deletes':>7}"
        f" {'txn':>7} {'commit':>7}"
        "  (CPU µs per message, medians of",
        a.rounds,
        "rounds; totals per round)",
    )
    for (b, v), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        each = ", ".join(f"{r['total']:.1f}" for r in rs)
        print(
            f"{b:>5}  {v:<24} {med['total']:>7.1f} {med['sends']:>7.1f} {med['deletes']:>7.1f}"
            f" {med['txn']:>7.1f} {med['commit']:>7.1f}  ({each})"
        )


if __name__ == "__main__":
    main()
