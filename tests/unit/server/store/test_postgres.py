"""PostgresStore's batch writer against the real PostgreSQL: one bad operation fails alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from porch.server.store.base import OutgoingCopy, OutgoingDestination, StoredMessage, StoreError
from porch.server.store.postgres import PostgresStore, is_transient
from tests.integration.backends import PG_ADMIN_DSN, fresh_database, require_services

NOW = 1_700_000_000_000


@pytest.fixture
def dsn() -> Iterator[str]:
    require_services()
    yield from fresh_database()  # creates it with asyncio.run: outside the test's loop


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(dsn, pool_size=4) as s:
        yield s


async def _register(store: PostgresStore, phone: str) -> str:
    account_id, _, _ = await store.register(phone, b"h" * 32, 42, "laptop", NOW, str(uuid.uuid4()))
    return account_id


async def _send(store: PostgresStore, sender: str, to: str, n: int, kind: int = 1) -> StoredMessage:
    copy = OutgoingCopy(1, kind, f"body{n}")
    dest = [OutgoingDestination(to, (copy,))]
    return await store.store_message(sender, 1, f"m{n}", dest, None, NOW + n, NOW + 10**9)


async def test_a_bad_ack_in_a_batch_fails_alone(store: PostgresStore) -> None:
    alice = await _register(store, "+14155550100")
    bob = await _register(store, "+14155550101")
    first = await _send(store, alice, bob, 0)
    # All queued at once, so the writer takes them as one batch: good sends, a good ack, and
    # acks whose ids no BIGINT holds (the gateway refuses those; the store must cope anyway).
    results = await asyncio.gather(
        *(_send(store, alice, bob, n) for n in range(1, 21)),
        store.delete_envelopes(bob, 1, [2**63]),
        store.delete_envelopes(bob, 1, [first.envelopes[0].id]),
        _send(store, alice, bob, 21, kind=2**15),  # beyond SMALLINT
        *(_send(store, alice, bob, n) for n in range(22, 31)),
        store.delete_envelopes(bob, 1, [-(2**64)]),
        return_exceptions=True,
    )
    sends = results[:20] + results[23:32]
    assert all(isinstance(r, StoredMessage) and not r.duplicate for r in sends), sends
    assert isinstance(results[20], StoreError)
    assert results[21] == 1  # the good ack deleted its envelope
    assert isinstance(results[22], StoreError)
    assert isinstance(results[32], StoreError)
    queued = await store.fetch_envelopes(bob, 1, 100)
    assert [e.body for e in queued] == [f"body{n}" for n in range(1, 31) if n != 21]
    # The order of the batch is kept even when it is written operation by operation.
    assert [e.id for e in queued] == sorted(e.id for e in queued)


async def test_writes_after_close_are_refused_not_left_waiting(dsn: str) -> None:
    s = PostgresStore(dsn, pool_size=2)
    async with s:
        alice = await _register(s, "+14155550102")
    with pytest.raises(StoreError):
        await asyncio.wait_for(s.delete_envelopes(alice, 1, [1]), 5)


async def _terminate_connections(dsn: str) -> int:
    """What a PostgreSQL restart or failover does to a node's pool: every connection cut."""
    name = dsn.rsplit("/", 1)[-1]
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
        )
    finally:
        await admin.close()


async def test_lost_connections_are_retried_not_failed(dsn: str) -> None:
    async with PostgresStore(dsn, pool_size=2) as store:
        alice = await _register(store, "+14155550103")
        bob = await _register(store, "+14155550104")
        assert await _terminate_connections(dsn) >= 1
        # A read, a write through the pool, and a send through the batch writer: each meets a
        # dead connection first, which is transient (is_transient), and is run again.
        assert (await store.get_account(alice)) is not None
        await _terminate_connections(dsn)
        await store.set_discoverable(alice, False)
        await _terminate_connections(dsn)
        stored = await _send(store, alice, bob, 1)
        assert not stored.duplicate
        assert [e.body for e in await store.fetch_envelopes(bob, 1, 10)] == ["body1"]
        await store.ping()


def test_transient_errors_are_named() -> None:
    assert is_transient(asyncpg.ConnectionDoesNotExistError("gone"))
    assert is_transient(asyncpg.DeadlockDetectedError("deadlock"))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(asyncpg.UniqueViolationError("dup"))
    assert not is_transient(asyncpg.NumericValueOutOfRangeError("too big"))
