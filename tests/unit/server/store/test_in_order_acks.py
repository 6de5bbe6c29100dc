"""Acks that cover a stretch of a device's queue in order (a drain's), on SQLite and on
PostgreSQL (the fixtures of test_contract); on SQLite they are one range delete
(store/sqlite_batch.py, `_delete_range`), which must delete exactly the acknowledged ids."""

# ruff: noqa: F811 (the fixtures imported from test_contract are parameters here)

from __future__ import annotations

import sqlite3
from pathlib import Path

from porch.server.store.base import Acknowledged, Store
from porch.server.store.messages import QUEUE
from porch.server.store.sqlite import _migrate, is_transient
from porch.server.store.sqlite_batch import RANGE_FROM, delete_acks
from tests.unit.server.store.helpers import PHONE_A, PHONE_B, PHONE_C, register, send
from tests.unit.server.store.test_contract import (  # noqa: F401 (fixtures)
    _scalar,
    _shared_send,
    make,
    store,
)


async def _queue(store: Store, account: str) -> list[int]:
    return [e.id for e in await store.fetch_envelopes(account, 1, 1000)]


async def test_an_in_order_ack_deletes_those_ids_and_leaves_other_devices_between(
    store: Store,
) -> None:
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    to_bob, to_carol = [], []
    for i in range(3 * RANGE_FROM):  # the two queues interleaved in the table
        to_bob.append((await send(store, alice, f"b{i}", bob)).envelopes[0].id)
        to_carol.append((await send(store, alice, f"c{i}", carol)).envelopes[0].id)
    first = to_bob[: 2 * RANGE_FROM]
    assert await store.delete_many([Acknowledged(bob, 1, first)]) == [len(first)]
    assert await _queue(store, bob) == to_bob[2 * RANGE_FROM :]
    assert await _queue(store, carol) == to_carol


async def test_an_in_order_ack_with_a_gap_leaves_the_unacknowledged_envelope(
    store: Store,
) -> None:
    alice, bob = [await register(store, p) for p in (PHONE_A, PHONE_B)]
    ids = [(await send(store, alice, f"b{i}", bob)).envelopes[0].id for i in range(2 * RANGE_FROM)]
    held = ids[RANGE_FROM // 2]  # delivered, not yet acknowledged (the client still works on it)
    acked = [i for i in ids if i != held]
    assert await store.delete_many([Acknowledged(bob, 1, acked)]) == [len(acked)]
    assert await _queue(store, bob) == [held]


async def test_an_ack_swapping_one_of_its_ids_for_another_devices_deletes_only_its_own(
    store: Store,
) -> None:
    # As many ids as the device holds in the range, but not the same ones: one is carol's,
    # and one of bob's between them is not acknowledged. Only bob's acknowledged ones go.
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    to_bob = [(await send(store, alice, f"b{i}", bob)).envelopes[0].id for i in range(RANGE_FROM)]
    to_carol = (await send(store, alice, "c", carol)).envelopes[0].id
    kept = (await send(store, alice, "b-kept", bob)).envelopes[0].id
    last = (await send(store, alice, "b-last", bob)).envelopes[0].id
    ack = [*to_bob, to_carol, last]
    assert await store.delete_many([Acknowledged(bob, 1, ack)]) == [RANGE_FROM + 1]
    assert await _queue(store, bob) == [kept]
    assert await _queue(store, carol) == [to_carol]


async def test_an_in_order_ack_releases_shared_payloads_with_their_last_envelope(
    store: Store,
) -> None:
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    sends = [await _shared_send(store, f"g{i}", f"body{i}", bob, carol) for i in range(RANGE_FROM)]
    of = {
        account: [e.id for s in sends for e in s.envelopes if e.account_id == account]
        for account in (bob, carol)
    }
    assert await store.delete_many([Acknowledged(bob, 1, of[bob])]) == [RANGE_FROM]
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == RANGE_FROM  # carol's still
    assert await store.delete_many([Acknowledged(carol, 1, of[carol])]) == [RANGE_FROM]
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0
    assert await _queue(store, alice) == []


def test_sqlite_deletes_an_in_order_ack_by_range_and_a_short_one_per_id(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "porch.db", isolation_level=None)
    _migrate(conn)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    ids = []
    for _ in range(2 * RANGE_FROM):
        conn.execute(
            "INSERT INTO envelopes (account_id, device_id, sender_account, sender_device, ts,"
            " kind, body, expires) VALUES ('bob', 1, 'alice', 1, 1, 1, 'b', 9)"
        )
        ids.append(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    conn.execute("BEGIN IMMEDIATE")
    outcomes = delete_acks(
        conn,
        [Acknowledged("bob", 1, ids[:RANGE_FROM]), Acknowledged("bob", 1, ids[RANGE_FROM:][:2])],
        is_transient,
    )
    conn.execute("COMMIT")
    assert outcomes == [RANGE_FROM, 2]
    ranged = [s for s in statements if s.startswith("DELETE") and "BETWEEN" in s]
    assert len(ranged) == 1  # the long ack; the short one went through the per-id delete
    left = [r[0] for r in conn.execute(QUEUE, ("bob", 1, 0, 100))]
    assert left == ids[RANGE_FROM + 2 :]
