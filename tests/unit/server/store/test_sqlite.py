"""SqliteStore against a real database file: schema, accounts, keys, messages, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from porch.server.store import sqlite as sqlite_store
from porch.server.store.base import (
    PreKey,
    StoreError,
    UsernameTaken,
)
from porch.server.store.migrations import MIGRATIONS
from porch.server.store.sqlite import SqliteStore
from tests.unit.server.store.helpers import NOW, PHONE_A, PHONE_B, PHONE_C, register, send


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "porch.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(db_path)
    await s.__aenter__()
    try:
        yield s
    finally:
        await s.__aexit__(None, None, None)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
        return {r[0] for r in rows}


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


# Schema --------------------------------------------------------------------------------------


async def test_migrations_create_schema_and_are_idempotent(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.__aenter__()
    await store.ping()
    await store.__aexit__(None, None, None)
    expected = {
        "accounts",
        "devices",
        "one_time_keys",
        "fallback_keys",
        "registration_sessions",
        "registration_numbers",
        "devices_curve25519",
        "devices_ed25519",
        "envelopes",
        "sent_messages",
        "blocks",
        "schema_version",
        "envelopes_queue",
        "envelopes_expiry",
        "sent_messages_expiry",
    }
    assert expected <= _tables(db_path)
    latest = [v for v, _, _ in MIGRATIONS]
    assert _versions(db_path) == latest

    for _ in range(2):  # reopening applies nothing twice
        again = SqliteStore(db_path)
        await again.__aenter__()
        await again.ping()
        await again.__aexit__(None, None, None)
    assert _versions(db_path) == latest


async def test_wal_mode(store: SqliteStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_open_failure_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = SqliteStore(blocker / "porch.db")
    with pytest.raises(StoreError):
        await store.__aenter__()


# Accounts and devices ------------------------------------------------------------------------


# Keys ----------------------------------------------------------------------------------------


async def test_migration_clears_clones_for_the_unique_indexes(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before migration 4 may hold clones: the first device keeps its keys."""
    store = SqliteStore(db_path)
    with monkeypatch.context() as m:
        m.setattr(sqlite_store, "MIGRATIONS", [x for x in MIGRATIONS if x[0] < 4])
        await store.__aenter__()
        alice = await register(store, PHONE_A)
        await register(store, PHONE_B)
        await store.set_identity(alice, 1, "m-a", "curve", "ed", "sig")
        await store.add_one_time_keys(alice, 1, [PreKey("k", "c", "s", False)])
        with sqlite3.connect(db_path) as conn:  # a clone, as the old server accepted it
            conn.execute(
                "UPDATE devices SET curve25519 = 'curve', ed25519 = 'ed', signature = 's',"
                " created = created + 1 WHERE account_id <> ?",
                (alice,),
            )
            conn.execute(
                "INSERT INTO one_time_keys SELECT account_id, 1, 'k', 'c', 's' FROM devices"
                " WHERE account_id <> ?",
                (alice,),
            )
        await store.__aexit__(None, None, None)
    await store.__aenter__()
    try:
        by_phone = {}
        for phone in (PHONE_A, PHONE_B):
            account = await store.get_account_by_phone(phone)
            assert account is not None
            by_phone[phone] = (await store.list_devices(account.id))[0]
        assert by_phone[PHONE_A].curve25519 == "curve"
        assert not by_phone[PHONE_B].has_keys
        assert await store.count_one_time_keys(by_phone[PHONE_B].account_id, 1) == 0
        assert await store.count_one_time_keys(alice, 1) == 1
    finally:
        await store.__aexit__(None, None, None)


# Registration sessions -----------------------------------------------------------------------


# Messages ------------------------------------------------------------------------------------


# Group commit --------------------------------------------------------------------------------


async def _in_one_batch(store: SqliteStore, *calls: Awaitable[Any]) -> list[Any]:
    """Run calls concurrently while the store thread is held, so they form one batch."""
    entered, release = threading.Event(), threading.Event()

    def hold(_: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)

    holder = asyncio.ensure_future(store._exec.call(hold))
    await asyncio.to_thread(entered.wait, 10)
    gathered = asyncio.gather(*calls, return_exceptions=True)
    await asyncio.sleep(0.05)  # every call is queued behind the holder
    release.set()
    await holder
    return list(await gathered)


async def test_failed_operation_does_not_roll_back_its_batch(
    store: SqliteStore, db_path: Path
) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    await store.set_username(alice, "alice")

    results = await _in_one_batch(
        store,
        store.set_discoverable(alice, False),
        store.set_username(bob, "alice"),  # taken: fails inside the batch
        send(store, alice, "c1", bob),
        store.register(PHONE_C, b"c" * 32, 7, "", NOW, str(uuid.uuid4())),
        store.set_block(bob, alice, True),
    )
    assert results[0] is None
    assert isinstance(results[1], UsernameTaken)
    assert results[2].duplicate is False
    assert results[3][2] is False
    assert results[4] is None

    a = await store.get_account(alice)
    b = await store.get_account(bob)
    assert a is not None and a.discoverable is False and a.username == "alice"
    assert b is not None and b.username is None
    assert len(await store.fetch_envelopes(bob, 1, 10)) == 1
    assert await store.get_account_by_phone(PHONE_C) is not None
    assert await store.list_blocks(bob) == [alice]

    await store.__aexit__(None, None, None)
    reopened = SqliteStore(db_path)
    await reopened.__aenter__()
    try:
        a = await reopened.get_account(alice)
        assert a is not None and a.discoverable is False
        assert len(await reopened.fetch_envelopes(bob, 1, 10)) == 1
        assert await reopened.get_account_by_phone(PHONE_C) is not None
    finally:
        await reopened.__aexit__(None, None, None)
    await store.__aenter__()  # for the fixture's close


async def test_failed_operation_rolls_back_its_own_writes(store: SqliteStore) -> None:
    alice = await register(store, PHONE_A)

    def half_done(c: sqlite3.Connection) -> None:
        c.execute("UPDATE accounts SET username = 'partial' WHERE id = ?", (alice,))
        raise RuntimeError("boom")

    results = await _in_one_batch(
        store, store._exec.call(half_done), store.set_discoverable(alice, False)
    )
    assert isinstance(results[0], RuntimeError)
    account = await store.get_account(alice)
    assert account is not None
    assert account.username is None
    assert account.discoverable is False


async def test_a_batch_runs_without_savepoints_until_an_operation_fails(
    store: SqliteStore,
) -> None:
    """A batch that succeeds runs each call once with no savepoint; one that fails is rolled
    back whole and runs again with a savepoint per call, leaving exactly what that gives (the
    first run's writes are gone), and so do the batches right after it."""
    alice = await register(store, PHONE_A)
    runs: list[str] = []

    def insert(tag: str) -> Any:
        def op(c: sqlite3.Connection) -> bool:
            runs.append(tag)
            c.execute("INSERT INTO blocks (account_id, blocked_id) VALUES (?, ?)", (alice, tag))
            # Inside a savepoint of its own this succeeds; without one it fails.
            try:
                c.execute("RELEASE op")
            except sqlite3.OperationalError:
                return False  # no savepoint `op`: the batch ran together
            c.execute("SAVEPOINT op")  # put back what RELEASE took, for _attempt's own RELEASE
            return True

        return store._exec.call(op)

    def failing(c: sqlite3.Connection) -> None:
        runs.append("bad")
        c.execute("INSERT INTO blocks (account_id, blocked_id) VALUES (?, 'bad')", (alice,))
        raise RuntimeError("boom")

    together = await _in_one_batch(store, insert("a1"), insert("a2"))
    assert together == [False, False] and runs == ["a1", "a2"]

    runs.clear()
    mixed = await _in_one_batch(store, insert("b1"), store._exec.call(failing), insert("b2"))
    assert mixed[0] is True and mixed[2] is True and isinstance(mixed[1], RuntimeError)
    assert runs == ["b1", "bad", "b1", "bad", "b2"]  # run together, then one by one
    assert sorted(await store.list_blocks(alice)) == ["a1", "a2", "b1", "b2"]

    runs.clear()
    after = await _in_one_batch(store, insert("c1"))
    assert after == [True] and runs == ["c1"]  # the next batches start isolated
    # Counted down by every batch since (the holder's, the read's, this one).
    assert 0 < store._exec._isolate_next < sqlite_store.ISOLATE_AFTER_FAILURE


# Durability ----------------------------------------------------------------------------------


async def test_a_locked_database_is_retried_not_failed(db_path: Path) -> None:
    # Another process (porch serve --workers, a backup) holds the write lock for longer than
    # busy_timeout: SQLITE_BUSY is transient, so the batch is run again, not failed.
    async with SqliteStore(db_path, busy_timeout_ms=20) as store:
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.1, other.rollback)
        release.start()
        try:
            account_id = await register(store, PHONE_A)
        finally:
            release.join()
            other.close()
        assert (await store.get_account(account_id)) is not None


async def test_a_failure_that_is_not_transient_is_not_retried(store: SqliteStore) -> None:
    calls = 0

    def op(c: sqlite3.Connection) -> None:
        nonlocal calls
        calls += 1
        c.execute("SELECT * FROM no_such_table")

    with pytest.raises(sqlite3.OperationalError):
        await store._exec.call(op)
    assert calls == 1
    assert sqlite_store.is_transient(sqlite3.OperationalError("database is locked"))
    assert not sqlite_store.is_transient(sqlite3.OperationalError("no such table: x"))
