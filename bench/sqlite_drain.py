"""The SQLite writer's CPU per drained message, by phase and variant (issue 10, drain).

python bench/sqlite_drain.py --variants base,range,noexp --messages 10000 --rounds 5

A device comes back to a backlog of M one-to-one envelopes (300 random bytes, base64, as
`porch bench drain` sends) on a database migrated as `porch serve` migrates it. The drain is
what the store thread does for it in the server: a first read of a window (256), then, per ack
of 64 ids, one transaction holding the delete of those ids and the read of the next 64
(`fetch_envelopes`'s QUEUE). The figure is this thread's CPU time (`time.thread_time`) per
message, split into reads (with the rows turned into Envelopes), deletes and the transaction
(BEGIN/COMMIT, the WAL frames of the dirtied pages and the periodic checkpoint). `--other N`
interleaves N other devices' envelopes between the drained device's (a shared server: the
device's rows are then not adjacent in the table). Variants (combine with '+'):

- base: the server's schema, pragmas and statements (sqlite_batch.delete_acks)
- range: the delete as one range statement over the device's queue key, checked by what it
  RETURNs (sqlite_batch's in-order path)
- rangec: range, after a COUNT of the range's rows (the server's: nothing deleted on a miss)
- nojoin: the read without the payloads join (a floor for reading shared payloads apart)
- noexp: without the envelopes_expiry index
- sdoff: secure_delete=OFF (not an option: docs/security.md; a floor)
- p8k / p16k: page_size 8192 / 16384 (a new database only)
- cache: cache_size=-65536 (64 MiB)
- noautockpt: wal_autocheckpoint=0 (no checkpoint in the drain)
- window1024: reads of 1024 and acks of 256 (a bigger window for a backlog)
- ackN: acks of N ids (pairs' small acks: where the range's extra COUNT may not pay)

Variants run interleaved, round after round; medians over the rounds are printed.
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

from porch.server.store.messages import QUEUE
from porch.server.store.records import Acknowledged
from porch.server.store.rows import envelope_from
from porch.server.store.sqlite import _migrate, is_transient
from porch.server.store.sqlite_batch import delete_acks

RETENTION_MS = 30 * 86_400_000
INSERT = (
    "INSERT INTO envelopes (account_id, device_id, sender_account, sender_device, ts, kind,"
    " body, expires, payload_id) VALUES (?, ?, ?, ?, ?, 1, ?, ?, NULL)"
)
NOJOIN = (
    "SELECT id, account_id, device_id, sender_account, sender_device, ts, kind, body, expires"
    " FROM envelopes WHERE account_id = ? AND device_id = ? AND id > ? ORDER BY id LIMIT ?"
)
RANGE_COUNT = (
    "SELECT COUNT(*) FROM envelopes WHERE account_id = ? AND device_id = ? AND id BETWEEN ? AND ?"
)
RANGE_DELETE = (
    "DELETE FROM envelopes WHERE account_id = ? AND device_id = ? AND id BETWEEN ? AND ?"
    " RETURNING id, payload_id"
)


def _open(directory: Path, variant: set[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(directory / "porch.db", isolation_level=None)
    if "p8k" in variant or "p16k" in variant:
        conn.execute(f"PRAGMA page_size={8192 if 'p8k' in variant else 16384}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA secure_delete={'OFF' if 'sdoff' in variant else 'ON'}")
    if "cache" in variant:
        conn.execute("PRAGMA cache_size=-65536")
    _migrate(conn)
    if "noexp" in variant:
        conn.execute("DROP INDEX envelopes_expiry")
    return conn


def _fill(conn: sqlite3.Connection, messages: int, other: int) -> None:
    now = 1_700_000_000_000
    conn.execute("BEGIN IMMEDIATE")
    for seq in range(messages):
        body = base64.b64encode(seq.to_bytes(12, "big") + os.urandom(288)).decode()
        conn.execute(INSERT, ("recv", 1, "send", 1, now + seq, body, now + seq + RETENTION_MS))
        for k in range(other):
            conn.execute(
                INSERT, (f"other{k}", 1, "send", 1, now + seq, body, now + seq + RETENTION_MS)
            )
        if seq % 1000 == 999:
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _delete_range(conn: sqlite3.Connection, ids: list[int], counted: bool) -> None:
    if counted:
        [(n,)] = conn.execute(RANGE_COUNT, ("recv", 1, ids[0], ids[-1])).fetchall()
        if n != len(ids):
            raise RuntimeError("the range held other ids")
    got = conn.execute(RANGE_DELETE, ("recv", 1, ids[0], ids[-1])).fetchall()
    if sorted(r[0] for r in got) != ids:
        raise RuntimeError("the range held other ids")


def run(variant: set[str], messages: int, other: int) -> dict[str, float]:
    window, ack = (1024, 256) if "window1024" in variant else (256, 64)
    for v in variant:
        if v.startswith("ack") and v[3:].isdigit():
            ack = int(v[3:])
    with tempfile.TemporaryDirectory() as tmp:
        conn = _open(Path(tmp), variant)
        _fill(conn, messages, other)
        if "noautockpt" in variant:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        spent = {"reads": 0.0, "deletes": 0.0}
        delivered: list[int] = []
        cursor, done = 0, 0
        t0 = time.thread_time()
        room = window
        while done < messages:
            conn.execute("BEGIN IMMEDIATE")
            d0 = time.thread_time()
            if delivered:
                ids, delivered = delivered[:ack], delivered[ack:]
                if "range" in variant or "rangec" in variant:
                    _delete_range(conn, ids, "rangec" in variant)
                else:
                    [n] = delete_acks(conn, [Acknowledged("recv", 1, ids)], is_transient)
                    if n != len(ids):
                        raise RuntimeError(f"deleted {n} of {len(ids)}")
                done += len(ids)
                room = len(ids)
            r0 = time.thread_time()
            page = [envelope_from(r) for r in conn.execute(QUEUE, ("recv", 1, cursor, room))]
            r1 = time.thread_time()
            conn.execute("COMMIT")
            spent["deletes"] += r0 - d0
            spent["reads"] += r1 - r0
            if page:
                cursor = page[-1].id
                delivered.extend(e.id for e in page)
        total = time.thread_time() - t0
        conn.close()
    us = {k: v / messages * 1e6 for k, v in spent.items()}
    us["total"] = total / messages * 1e6
    us["txn"] = us["total"] - us["reads"] - us["deletes"]
    return us


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="base,range,noexp,sdoff")
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--other", type=int, default=0, help="other devices' rows between them")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    variants = a.variants.split(",")
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(a.rounds):
        for v in variants:
            runs.setdefault(v, []).append(run(set(v.split("+")), a.messages, a.other))
    print(
        f"{'variant':<24} {'total':>7} {'reads':>7} {'deletes':>7} {'txn':>7}"
        f"  (CPU µs per message, medians of {a.rounds} rounds; totals per round)"
    )
    for v, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        each = ", ".join(f"{r['total']:.1f}" for r in rs)
        print(
            f"{v:<24} {med['total']:>7.1f} {med['reads']:>7.1f} {med['deletes']:>7.1f}"
            f" {med['txn']:>7.1f}  ({each})"
        )


if __name__ == "__main__":
    main()
