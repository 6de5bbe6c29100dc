"""Bytes a Porch target's database really uses for queued messages, read from the database.

Counting ``length(body)`` of rows misses the row headers, the indexes and page slack, so these
read what the database itself reports:

- SQLite: the ``dbstat`` virtual table (page bytes per table and index, after a WAL
  checkpoint so the file is current), and the whole file's pages in use
  (``page_count - freelist_count``) x ``page_size``;
- PostgreSQL: ``pg_total_relation_size`` (heap, TOAST and indexes) of each table.

Both are page-granular (4 KiB / 8 KiB), so a difference is only meaningful over many rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg

from porch.bench.targets import PG_ADMIN_DSN, SQLITE_STACKS, Target

#: The tables a stored message writes to: the per-device queue, the shared ciphertexts, and
#: the sender's idempotency rows (server/store/migrations.py).
MESSAGE_TABLES = ("envelopes", "payloads", "sent_messages")


def _sqlite(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path, timeout=30)
    try:
        # The server keeps its connection open; a passive checkpoint copies what it can.
        con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
        pages = int(con.execute("PRAGMA page_count").fetchone()[0])
        free = int(con.execute("PRAGMA freelist_count").fetchone()[0])
        out = {"file_in_use": (pages - free) * page_size}
        found = con.execute(
            "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat AS s "
            "JOIN sqlite_master AS m ON s.name = m.name GROUP BY m.tbl_name"
        ).fetchall()
        sizes = {str(name): int(size) for name, size in found}
    finally:
        con.close()
    for table in MESSAGE_TABLES:
        out[table] = sizes.get(table, 0)
    return out


async def _postgres(database: str) -> dict[str, int]:
    conn = await asyncpg.connect(f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}", timeout=10)
    try:
        out: dict[str, int] = {}
        for table in MESSAGE_TABLES:
            out[table] = int(await conn.fetchval("SELECT pg_total_relation_size($1)", table))
        out["database"] = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        return out
    finally:
        await conn.close()


def usage(target: Target) -> dict[str, int]:
    """Bytes per message table (with its indexes) and in all, now; ``total`` is the sum of
    the message tables."""
    if target.kind in SQLITE_STACKS:
        data_dir = target.nodes[0].data_dir
        assert data_dir is not None
        out = _sqlite(data_dir / "porch.db")
    elif target.kind == "cluster" and target.database is not None:
        out = asyncio.run(_postgres(target.database))
    else:
        raise ValueError(f"no database to measure on target {target.kind!r}")
    out["total"] = sum(out[t] for t in MESSAGE_TABLES)
    return out


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
