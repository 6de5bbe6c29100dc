"""Envelopes of a send with a ttl (spec §7), on SQLite and on PostgreSQL (the fixtures of
test_contract): they expire before the retention, a backlog read never returns them and
deletes them (payloads too), the sweep deletes them, and the send's idempotency record keeps
the retention."""

# ruff: noqa: F811 (the fixtures imported from test_contract are parameters here)

from __future__ import annotations

from porch.server.store.base import OutgoingCopy, OutgoingDestination, SharedPayload, Store
from tests.unit.server.store.helpers import DAY, NOW, PHONE_A, PHONE_B, PHONE_C, register, to
from tests.unit.server.store.test_contract import _scalar, make, store  # noqa: F401

SECOND = 1000


async def _send(store: Store, sender: str, cid: str, to_: str, ttl_ms: int | None) -> None:
    deadline = None if ttl_ms is None else NOW + ttl_ms
    await store.store_message(
        sender, 1, cid, to(to_, OutgoingCopy(1, 1, f"b-{cid}")), None, NOW, NOW + DAY, deadline
    )


async def test_the_envelopes_of_a_ttl_send_carry_and_store_its_deadline(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    stored = await store.store_message(
        alice, 1, "t", to(bob, OutgoingCopy(1, 1, "b")), None, NOW, NOW + DAY, NOW + SECOND
    )
    [env] = stored.envelopes
    assert env.expires == NOW + SECOND  # what the gateway checks on live delivery
    assert await _scalar(store, "SELECT expires FROM envelopes") == NOW + SECOND
    # The idempotency record keeps the retention: a late resend is still a duplicate.
    assert await _scalar(store, "SELECT expires FROM sent_messages") == NOW + DAY
    await store.sweep(NOW + 2 * SECOND)
    again = await store.store_message(
        alice, 1, "t", to(bob, OutgoingCopy(1, 1, "b")), None, NOW, NOW + DAY, NOW + SECOND
    )
    assert again.duplicate and again.ts == NOW


async def test_a_deadline_past_the_retention_is_cut_to_it(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    stored = await store.store_message(
        alice, 1, "t", to(bob, OutgoingCopy(1, 1, "b")), None, NOW, NOW + DAY, NOW + 2 * DAY
    )
    assert stored.envelopes[0].expires == NOW + DAY
    assert await _scalar(store, "SELECT expires FROM envelopes") == NOW + DAY


async def test_a_send_without_ttl_is_as_before(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    await _send(store, alice, "plain", bob, None)
    [env] = await store.fetch_envelopes(bob, 1, 10, NOW + DAY - 1)
    assert env.expires is None and env.body == "b-plain"
    assert await store.fetch_envelopes(bob, 1, 10, NOW + DAY) == []  # the retention's end


async def test_a_backlog_read_skips_and_deletes_expired_envelopes_in_order(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    # live, expired, expired, live, expired, live: more expired than a page of 2 holds
    plan = [None, SECOND, SECOND, None, 2 * SECOND, 10 * SECOND]
    for i, ttl in enumerate(plan):
        await _send(store, alice, f"m{i}", bob, ttl)
    now = NOW + 5 * SECOND
    first = await store.fetch_envelopes(bob, 1, 2, now)
    assert [e.body for e in first] == ["b-m0", "b-m3"]  # a full page, from behind the expired
    assert await _scalar(store, "SELECT COUNT(*) FROM envelopes") == 4  # m1, m2 deleted
    everything = await store.fetch_envelopes(bob, 1, 10, now)
    assert [e.body for e in everything] == ["b-m0", "b-m3", "b-m5"]
    assert await _scalar(store, "SELECT COUNT(*) FROM envelopes") == 3
    # Without now (tools, tests), nothing is filtered.
    assert len(await store.fetch_envelopes(bob, 1, 10)) == 3


async def test_an_expired_shared_send_leaves_no_payload(store: Store) -> None:
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    dests = [OutgoingDestination(a, (OutgoingCopy(1, None, None),)) for a in (bob, carol)]
    await store.store_message(
        alice, 1, "g", dests, SharedPayload(2, "megolm"), NOW, NOW + DAY, NOW + SECOND
    )
    assert await _scalar(store, "SELECT expires FROM payloads") == NOW + SECOND
    assert await store.fetch_envelopes(bob, 1, 10, NOW + SECOND) == []
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 1  # carol's still points
    assert await store.fetch_envelopes(carol, 1, 10, NOW + SECOND) == []
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0


async def test_the_sweep_deletes_expired_ttl_envelopes_and_keeps_the_rest(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    await _send(store, alice, "short", bob, SECOND)
    await _send(store, alice, "plain", bob, None)
    dests = [OutgoingDestination(bob, (OutgoingCopy(2, None, None),))]
    await store.store_message(alice, 1, "g", dests, SharedPayload(2, "x"), NOW, NOW + DAY, NOW)
    result = await store.sweep(NOW + SECOND)
    assert (result.envelopes, result.payloads) == (2, 1)
    assert [e.body for e in await store.fetch_envelopes(bob, 1, 10)] == ["b-plain"]
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0
