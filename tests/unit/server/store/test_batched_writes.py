"""The hot path's store calls, on SQLite and on PostgreSQL (the fixtures of test_contract):
reads after a cursor, and a tick's sends in one call where each fails alone (issue 10)."""

# ruff: noqa: F811 (the fixtures imported from test_contract are parameters here)

from __future__ import annotations

from porch.server.store.base import (
    Acknowledged,
    OutgoingCopy,
    OutgoingDestination,
    OutgoingMessage,
    SharedPayload,
    Store,
    StoredMessage,
)
from tests.unit.server.store.helpers import DAY, NOW, PHONE_A, PHONE_B, PHONE_C, register, send
from tests.unit.server.store.test_contract import (  # noqa: F401 (fixtures)
    _scalar,
    _shared_send,
    make,
    store,
)


def _message(sender: str, client_id: str, recipient: str, body: str | None) -> OutgoingMessage:
    """A send to recipient's device 1; body None is a copy without a body and no shared
    payload, which the store refuses (ValueError): a send that fails on its own."""
    copy = OutgoingCopy(1, None, None) if body is None else OutgoingCopy(1, 1, body)
    return OutgoingMessage(
        sender, 1, client_id, [OutgoingDestination(recipient, (copy,))], None, NOW, NOW + DAY
    )


async def test_a_read_after_a_cursor_returns_only_newer_envelopes(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    ids = [(await send(store, alice, f"c{i}", bob)).envelopes[0].id for i in range(6)]
    after = await store.fetch_envelopes(bob, 1, 2, after=ids[2])
    assert [e.id for e in after] == ids[3:5]
    assert await store.fetch_envelopes(bob, 1, 10, after=ids[-1]) == []
    assert [e.id for e in await store.fetch_envelopes(bob, 1, 10)] == ids


async def test_sends_of_one_call_are_stored_in_order_and_one_failure_fails_alone(
    store: Store,
) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    sends = [
        _message(alice, "m1", bob, "one"),
        _message(alice, "bad", bob, None),
        _message(alice, "m2", bob, "two"),
        _message(alice, "m1", bob, "one again"),  # a resend within the same call
    ]
    outcomes = await store.store_messages(sends)
    first, bad, second, resend = outcomes
    assert isinstance(first, StoredMessage) and isinstance(second, StoredMessage)
    assert isinstance(bad, Exception)  # ValueError on SQLite, StoreError on PostgreSQL
    assert isinstance(resend, StoredMessage) and resend.duplicate and not resend.envelopes
    assert resend.ts == first.ts
    queued = await store.fetch_envelopes(bob, 1, 10)
    assert [e.body for e in queued] == ["one", "two"]
    assert [e.id for e in queued] == [first.envelopes[0].id, second.envelopes[0].id]
    # The failed send left nothing behind: its client id may be sent again.
    again = await store.store_messages([_message(alice, "bad", bob, "fixed")])
    assert isinstance(again[0], StoredMessage) and not again[0].duplicate


async def test_shared_payloads_of_one_call_are_each_stored_once(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    shared = [
        OutgoingMessage(
            alice,
            1,
            f"g{i}",
            [OutgoingDestination(bob, (OutgoingCopy(1, None, None),))],
            SharedPayload(2, f"group-{i}"),
            NOW,
            NOW + DAY,
        )
        for i in range(3)
    ]
    outcomes = await store.store_messages(shared)
    assert all(isinstance(o, StoredMessage) for o in outcomes)
    assert [e.body for e in await store.fetch_envelopes(bob, 1, 10)] == [
        "group-0",
        "group-1",
        "group-2",
    ]


async def test_deletes_of_one_call_are_each_scoped_to_their_device(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    to_bob = [(await send(store, alice, f"b{i}", bob)).envelopes[0].id for i in range(3)]
    to_alice = [(await send(store, bob, f"a{i}", alice)).envelopes[0].id for i in range(2)]
    outcomes = await store.delete_many(
        [
            Acknowledged(bob, 1, to_bob[:2]),
            Acknowledged(alice, 1, [*to_alice, to_bob[2]]),  # bob's id is not alice's to delete
            Acknowledged(bob, 1, []),
        ]
    )
    assert outcomes == [2, 2, 0]
    assert [e.id for e in await store.fetch_envelopes(bob, 1, 10)] == [to_bob[2]]
    assert await store.fetch_envelopes(alice, 1, 10) == []


async def test_one_bad_ack_in_a_call_leaves_the_others_exact(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    to_bob = [(await send(store, alice, f"b{i}", bob)).envelopes[0].id for i in range(4)]
    gone = to_bob[0]
    assert await store.delete_many([Acknowledged(bob, 1, [gone])]) == [1]
    outcomes = await store.delete_many(
        [
            Acknowledged(bob, 1, [to_bob[1]]),
            Acknowledged(bob, 1, [gone, to_bob[2], 2**63 - 1]),  # one deleted, one never there
            Acknowledged(bob, 1, [to_bob[3], to_bob[3]]),  # the same id twice: deleted once
        ]
    )
    assert outcomes == [1, 1, 1]
    assert await store.fetch_envelopes(bob, 1, 10) == []


async def test_a_call_of_sends_takes_fresh_ids_after_deleted_ones(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    last = (await send(store, alice, "first", bob)).envelopes[0].id
    assert await store.delete_many([Acknowledged(bob, 1, [last])]) == [1]
    outcomes = await store.store_messages(
        [_message(alice, f"n{i}", bob, f"body-{i}") for i in range(5)]
    )
    ids = [o.envelopes[0].id for o in outcomes if isinstance(o, StoredMessage)]
    assert len(ids) == 5 and ids == sorted(ids) and ids[0] > last  # never an id used before
    queued = await store.fetch_envelopes(bob, 1, 10)
    assert [(e.id, e.body) for e in queued] == [(i, f"body-{n}") for n, i in enumerate(ids)]


async def test_acks_of_one_call_release_a_shared_payload_with_its_last_envelope(
    store: Store,
) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    carol = await register(store, "+14155550199")
    group = OutgoingMessage(
        alice,
        1,
        "g",
        [
            OutgoingDestination(bob, (OutgoingCopy(1, None, None),)),
            OutgoingDestination(carol, (OutgoingCopy(1, None, None),)),
        ],
        SharedPayload(2, "once"),
        NOW,
        NOW + DAY,
    )
    [stored] = await store.store_messages([group])
    assert isinstance(stored, StoredMessage)
    to_bob, to_carol = (e.id for e in stored.envelopes)
    assert await store.delete_many([Acknowledged(bob, 1, [to_bob])]) == [1]
    assert [e.body for e in await store.fetch_envelopes(carol, 1, 10)] == ["once"]
    assert await store.delete_many([Acknowledged(carol, 1, [to_carol])]) == [1]
    assert (await store.sweep(NOW)).payloads == 0  # already gone with its last envelope


async def test_a_large_ack_is_deleted_in_chunks_each_id_once(store: Store) -> None:
    # More ids than one delete statement takes (DELETE_CHUNK), repeated ids, and an id of
    # another device: each of the device's envelopes is deleted and counted once.
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    outcomes = await store.store_messages(
        [_message(alice, f"m{i}", bob, f"b{i}") for i in range(700)]
    )
    ids = [o.envelopes[0].id for o in outcomes if isinstance(o, StoredMessage)]
    assert len(ids) == 700
    alices = (await send(store, bob, "a0", alice)).envelopes[0].id
    assert await store.delete_envelopes(bob, 1, [*ids[:5], *ids, alices]) == 700
    assert await store.fetch_envelopes(bob, 1, 10) == []
    assert [e.id for e in await store.fetch_envelopes(alice, 1, 10)] == [alices]


async def test_a_payload_released_by_several_deletes_of_one_call_goes_once(store: Store) -> None:
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    first = await _shared_send(store, "g1", "one", alice, bob, carol)
    second = await _shared_send(store, "g2", "two", alice, bob, carol)
    ids = {(e.account_id, e.body): e.id for s in (first, second) for e in s.envelopes}
    outcomes = await store.delete_many(
        [
            Acknowledged(alice, 1, [ids[alice, "one"], ids[alice, "two"]]),
            Acknowledged(bob, 1, [ids[bob, "one"]]),
            Acknowledged(carol, 1, [ids[carol, "one"], ids[alice, "two"]]),  # not carol's
        ]
    )
    assert outcomes == [2, 1, 1]
    # "one" has no envelope left and went with the call; "two" is still bob's and carol's.
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 1
    assert [e.body for e in await store.fetch_envelopes(carol, 1, 10)] == ["two"]
