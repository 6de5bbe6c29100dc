"""WAL checkpoints run on their own thread, never inside a commit (store/sqlite_checkpoint.py).

A row reaches the database file (not only the -wal file) when a checkpoint copies it: these
tests look for a message's body in the file's bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from porch.server.store import sqlite_checkpoint
from porch.server.store.base import OutgoingCopy
from porch.server.store.sqlite import SqliteStore
from tests.unit.server.store.helpers import NOW, PHONE_A, PHONE_B, register, to

DAY = 86_400_000
BIG = 64 * 1024  # 80 of these: about 1,300 WAL pages, past the automatic checkpoint's 1,000


async def _send(store: SqliteStore, sender: str, recipient: str, cid: str, body: str) -> None:
    copies = to(recipient, OutgoingCopy(1, 1, body))
    await store.store_message(sender, 1, cid, copies, None, NOW, NOW + DAY)


def _in_database_file(path: Path, marker: str) -> bool:
    return marker.encode() in path.read_bytes()


async def test_commits_never_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_checkpoint, "INTERVAL_S", 3600.0)  # the thread never gets to it
    path = tmp_path / "porch.db"
    store = SqliteStore(path)
    await store.__aenter__()
    try:
        a, b = await register(store, PHONE_A), await register(store, PHONE_B)
        off = await store._exec.call(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert off[0] == 0
        await _send(store, a, b, "marker", "marker-first-one")
        for i in range(80):
            await _send(store, a, b, f"big-{i}", "x" * BIG)
        # SQLite's own checkpoint would have copied the marker in the commit that passed 1,000
        # WAL pages; it waits in the WAL for the checkpoint thread instead.
        assert (tmp_path / "porch.db-wal").stat().st_size > 1000 * 4096
        assert not _in_database_file(path, "marker-first-one")
    finally:
        await store.__aexit__(None, None, None)
    assert _in_database_file(path, "marker-first-one")  # the last close checkpoints the rest


async def test_the_thread_checkpoints_what_was_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_checkpoint, "INTERVAL_S", 0.02)
    path = tmp_path / "porch.db"
    store = SqliteStore(path)
    await store.__aenter__()
    try:
        a, b = await register(store, PHONE_A), await register(store, PHONE_B)
        await _send(store, a, b, "marker", "marker-second-one")
        for _ in range(250):  # up to 5 s
            if _in_database_file(path, "marker-second-one"):
                break
            await asyncio.sleep(0.02)
        assert _in_database_file(path, "marker-second-one")  # while the store is open
        # The writer goes on while checkpoints run, and its reads see what it wrote.
        for i in range(50):
            await _send(store, a, b, f"more-{i}", f"body-{i}")
        envelopes = await store.fetch_envelopes(b, 1, 100, NOW)
        assert len(envelopes) == 51
    finally:
        await store.__aexit__(None, None, None)
