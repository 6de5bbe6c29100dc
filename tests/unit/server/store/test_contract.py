"""One suite for every store: each test runs on SQLite and on PostgreSQL (issue 7).

The per-domain stores share their query texts (store/sql.py), so what is tested here is the
behaviour both backends promise through the Store protocol: accounts and devices, keys,
registration sessions, messages, expiry, atomicity and the lifecycle. PostgreSQL is the real
server of tests/integration/backends.py, in a fresh database per test; without it these
tests are skipped locally, with the hint to start it, and fail in CI.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from porch.server.store.base import (
    CodeSlot,
    IdentityKeyTaken,
    OutgoingCopy,
    OutgoingDestination,
    PreKey,
    RegistrationSession,
    SharedPayload,
    Store,
    StoredMessage,
    StoreError,
    UsernameTaken,
)
from porch.server.store.postgres import PostgresStore
from porch.server.store.sql import Op, count, value
from porch.server.store.sqlite import SqliteStore
from tests.integration.backends import fresh_database, require_services
from tests.unit.server.store.helpers import (
    DAY,
    NOW,
    PHONE_A,
    PHONE_B,
    PHONE_C,
    register,
    send,
    to,
    with_keys,
)

Factory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """New store objects on one database (several, for the tests that reopen it)."""
    if request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "data" / "porch.db")
        return
    require_services()
    for dsn in fresh_database():  # created with asyncio.run: outside the test's loop
        yield functools.partial(PostgresStore, dsn, pool_size=4)


@pytest.fixture
async def store(make: Factory) -> AsyncIterator[Store]:
    async with make() as s:
        yield s


async def test_secret_is_created_once_and_kept(make: Factory) -> None:
    store = make()
    async with store:
        first = await store.secret("code-hmac", b"a" * 32)
        assert first == b"a" * 32
        assert await store.secret("code-hmac", b"b" * 32) == first  # the stored one wins
        assert await store.secret("other", b"c" * 32) == b"c" * 32
    async with store:
        assert await store.secret("code-hmac", b"d" * 32) == first


async def test_register_creates_account_and_device_1(store: Store) -> None:
    new_id = str(uuid.uuid4())
    account_id, device_id, replaced = await store.register(
        PHONE_A, b"p" * 32, 1234, "laptop", NOW, new_id
    )
    assert (account_id, device_id, replaced) == (new_id, 1, False)
    account = await store.get_account(account_id)
    assert account is not None
    assert account.phone == PHONE_A
    assert account.username is None
    assert account.discoverable is True
    assert account.master_key is None
    assert account.created == NOW
    assert await store.get_account_by_phone(PHONE_A) == account
    devices = await store.list_devices(account_id)
    assert len(devices) == 1
    d = devices[0]
    assert (d.device_id, d.registration_id, d.name, d.created) == (1, 1234, "laptop", NOW)
    assert d.last_seen_day == NOW // DAY
    assert not d.has_keys
    auth = await store.get_device_auth(account_id, 1)
    assert auth is not None
    assert auth.password_hash == b"p" * 32
    assert auth.registration_id == 1234
    assert await store.get_device_auth(account_id, 2) is None
    assert await store.get_account(str(uuid.uuid4())) is None


async def test_reregister_replaces_devices_keys_and_queue(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    await with_keys(store, alice, 5, fallback=True)
    await send(store, bob, "m1", alice)
    await send(store, alice, "m2", bob)  # alice's outgoing mail is bob's, untouched
    await store.set_username(alice, "alice")

    again, device_id, replaced = await store.register(
        PHONE_A, b"n" * 32, 99, "phone", NOW + 1, str(uuid.uuid4())
    )
    assert (again, device_id, replaced) == (alice, 1, True)
    account = await store.get_account(alice)
    assert account is not None
    assert account.master_key is None  # new identity to come
    assert account.username == "alice"
    devices = await store.list_devices(alice)
    assert [(d.device_id, d.registration_id, d.name) for d in devices] == [(1, 99, "phone")]
    assert not devices[0].has_keys
    auth = await store.get_device_auth(alice, 1)
    assert auth is not None and auth.password_hash == b"n" * 32
    assert await store.count_one_time_keys(alice, 1) == 0
    assert await store.fetch_envelopes(alice, 1, 100) == []
    assert len(await store.fetch_envelopes(bob, 1, 100)) == 1
    # No fallback key survives either: a claim finds no keyed device at all.
    await store.set_identity(alice, 1, "m2", "c2", "e2", "s2")
    claimed = await store.claim_keys(alice, None)
    assert [c.one_time_key for c in claimed] == [None]


async def test_usernames(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    await store.set_username(alice, "alice")
    found = await store.get_account_by_username("alice")
    assert found is not None and found.id == alice
    with pytest.raises(UsernameTaken):
        await store.set_username(bob, "alice")
    await store.set_username(alice, None)
    assert await store.get_account_by_username("alice") is None
    await store.set_username(bob, "alice")
    await store.set_username(alice, None)  # several accounts may have no username


async def test_discoverable_blocks_touch_and_delete_device(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    await store.set_discoverable(alice, False)
    account = await store.get_account(alice)
    assert account is not None and account.discoverable is False

    await store.set_block(alice, bob, True)
    await store.set_block(alice, bob, True)
    assert await store.list_blocks(alice) == [bob]
    await store.set_block(alice, bob, False)
    assert await store.list_blocks(alice) == []

    await store.touch_device(alice, 1, 12345)
    assert (await store.list_devices(alice))[0].last_seen_day == 12345

    await send(store, bob, "m1", alice)
    assert await store.delete_device(alice, 1) is True
    assert await store.delete_device(alice, 1) is False
    assert await store.list_devices(alice) == []
    assert await store.fetch_envelopes(alice, 1, 10) == []


async def test_one_time_keys_and_identity(store: Store) -> None:
    alice = await register(store, PHONE_A)
    assert await store.claim_keys(alice, None) == []  # no identity yet: not claimable
    await store.set_identity(alice, 1, "master", "curve", "ed", "sig")
    account = await store.get_account(alice)
    assert account is not None and account.master_key == "master"
    device = (await store.list_devices(alice))[0]
    assert (device.curve25519, device.ed25519, device.signature) == ("curve", "ed", "sig")
    keys = [PreKey("a", "ca", "sa", False), PreKey("b", "cb", "sb", False)]
    assert await store.add_one_time_keys(alice, 1, keys) == 2
    assert await store.add_one_time_keys(alice, 1, keys) == 2  # same ids are ignored
    assert await store.add_one_time_keys(alice, 1, [PreKey("f", "cf", "sf", True)]) == 2
    assert await store.count_one_time_keys(alice, 1) == 2


async def test_an_identity_key_belongs_to_one_device(store: Store) -> None:
    alice = await register(store, PHONE_A)
    mallory = await register(store, PHONE_B)
    await store.set_identity(alice, 1, "m-alice", "curve", "ed", "sig")
    for curve, ed in (("curve", "ed"), ("curve", "ed-2"), ("curve-2", "ed")):
        with pytest.raises(IdentityKeyTaken):
            await store.set_identity(mallory, 1, "m-mallory", curve, ed, "sig")
    # Refused as a whole: not even the master key was written.
    account = await store.get_account(mallory)
    assert account is not None and account.master_key is None
    assert not (await store.list_devices(mallory))[0].has_keys
    await store.set_identity(alice, 1, "m-alice", "curve", "ed", "sig")  # its own again: fine
    await store.set_identity(mallory, 1, "m-mallory", "curve-2", "ed-2", "sig")


async def test_claim_keys_filters_devices(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await with_keys(store, alice, 2, fallback=False)
    assert await store.claim_keys(alice, [2, 3]) == []
    claimed = await store.claim_keys(alice, [1])
    assert len(claimed) == 1
    assert claimed[0].device.device_id == 1
    assert claimed[0].one_time_key == PreKey("k0000", "c0", "s0", False)
    await store.claim_keys(alice, None)
    exhausted = await store.claim_keys(alice, None)
    assert exhausted[0].one_time_key is None  # no fallback uploaded


async def test_concurrent_claims_hand_out_each_key_once(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await with_keys(store, alice, 30, fallback=True)
    results = await asyncio.gather(*(store.claim_keys(alice, None) for _ in range(50)))
    keys = [r[0].one_time_key for r in results]
    assert all(k is not None for k in keys)
    one_time = [k.key_id for k in keys if k is not None and not k.fallback]
    fallbacks = [k for k in keys if k is not None and k.fallback]
    assert len(one_time) == 30
    assert len(set(one_time)) == 30  # never twice
    assert len(fallbacks) == 20
    assert {k.key_id for k in fallbacks} == {"fb"}
    assert await store.count_one_time_keys(alice, 1) == 0


async def test_replacing_the_fallback_key(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await with_keys(store, alice, 0, fallback=True)
    await store.add_one_time_keys(alice, 1, [PreKey("fb2", "c2", "s2", True)])
    claimed = await store.claim_keys(alice, None)
    assert claimed[0].one_time_key == PreKey("fb2", "c2", "s2", True)


def _doubling(sends: int) -> int:
    return 1000 * 2 ** (sends - 1)


async def test_registration_sessions(store: Store) -> None:
    assert await store.get_registration_session(b"a" * 32) is None
    assert await store.count_session_attempt(b"a" * 32) == 0
    a = RegistrationSession(b"a" * 32, PHONE_A, b"hash", 0, NOW + 1000)
    b = RegistrationSession(b"b" * 32, PHONE_A, None, 0, NOW + 1000)
    other = RegistrationSession(b"o" * 32, PHONE_B, b"hash", 0, NOW + 1000)
    for session in (a, b, other):
        await store.put_registration_session(session)
    assert await store.get_registration_session(b"a" * 32) == a
    assert await store.count_session_attempt(b"a" * 32) == 1
    assert await store.count_session_attempt(b"a" * 32) == 2
    assert (await store.get_registration_session(b"b" * 32)) == b  # counted apart
    renewed = RegistrationSession(b"a" * 32, PHONE_A, b"new", 0, NOW + 2000)
    await store.put_registration_session(renewed)  # a new code in the session
    assert await store.get_registration_session(b"a" * 32) == renewed
    # Consuming one ends every session of the number, once.
    assert await store.consume_registration_session(b"b" * 32) is True
    assert await store.get_registration_session(b"a" * 32) is None
    assert await store.consume_registration_session(b"b" * 32) is False
    assert await store.get_registration_session(b"o" * 32) == other


async def test_claim_code_send_spaces_codes_per_number(store: Store) -> None:
    quiet = 60_000
    assert await store.claim_code_send(PHONE_A, NOW, _doubling, quiet) == CodeSlot(
        True, 1, NOW + 1000
    )
    assert await store.claim_code_send(PHONE_A, NOW + 999, _doubling, quiet) == CodeSlot(
        False, 1, NOW + 1000
    )
    assert await store.claim_code_send(PHONE_B, NOW, _doubling, quiet) == CodeSlot(
        True, 1, NOW + 1000
    )
    assert await store.claim_code_send(PHONE_A, NOW + 1000, _doubling, quiet) == CodeSlot(
        True, 2, NOW + 3000
    )
    # Quiet for `quiet` after the due time: the run starts over.
    later = NOW + 3000 + quiet
    assert await store.claim_code_send(PHONE_A, later, _doubling, quiet) == CodeSlot(
        True, 1, later + 1000
    )


async def test_concurrent_code_claims_grant_one(store: Store) -> None:
    slots = await asyncio.gather(
        *(store.claim_code_send(PHONE_A, NOW, _doubling, 60_000) for _ in range(5))
    )
    assert sum(slot.granted for slot in slots) == 1


async def test_store_message_is_idempotent_by_client_id(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    first = await send(store, alice, "c1", bob, devices=(1, 2), now=NOW)
    assert first.duplicate is False
    assert first.ts == NOW
    assert [(e.device_id, e.body) for e in first.envelopes] == [
        (1, "body-c1-1"),
        (2, "body-c1-2"),
    ]
    assert all(e.sender_account == alice and e.sender_device == 1 for e in first.envelopes)

    again = await send(store, alice, "c1", bob, now=NOW + 5000)
    assert again.duplicate is True
    assert again.ts == NOW  # the original timestamp
    assert again.envelopes == ()
    assert len(await store.fetch_envelopes(bob, 1, 100)) == 1

    # The key is (sender, device, client id): another sender's "c1" is a new message.
    other = await send(store, bob, "c1", alice)
    assert other.duplicate is False
    other_device = await store.store_message(
        alice, 2, "c1", to(bob, OutgoingCopy(1, 0, "x")), None, NOW, NOW + DAY
    )
    assert other_device.duplicate is False


async def test_fetch_envelopes_ordered_with_limit(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    ids = []
    for i in range(10):
        stored = await send(store, alice, f"c{i}", bob, now=NOW + (10 - i))
        ids.append(stored.envelopes[0].id)
    assert ids == sorted(ids)
    page = await store.fetch_envelopes(bob, 1, 4)
    assert [e.id for e in page] == ids[:4]
    assert [e.body for e in page] == [f"body-c{i}-1" for i in range(4)]
    everything = await store.fetch_envelopes(bob, 1, 100)
    assert [e.id for e in everything] == ids
    e = everything[0]
    assert (e.account_id, e.device_id, e.sender_account, e.sender_device, e.kind) == (
        bob,
        1,
        alice,
        1,
        1,
    )
    assert await store.fetch_envelopes(bob, 2, 100) == []
    assert await store.queue_depth() == 10


async def test_delete_envelopes_only_for_the_given_device(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    to_bob = await send(store, alice, "c1", bob, devices=(1, 2))
    to_alice = await send(store, bob, "c2", alice)
    bob1, bob2 = (e.id for e in to_bob.envelopes)
    alice1 = to_alice.envelopes[0].id

    # Bob's device 1 names every id: only its own envelope goes.
    assert await store.delete_envelopes(bob, 1, [bob1, bob2, alice1, 999_999]) == 1
    assert await store.fetch_envelopes(bob, 1, 10) == []
    assert [e.id for e in await store.fetch_envelopes(bob, 2, 10)] == [bob2]
    assert [e.id for e in await store.fetch_envelopes(alice, 1, 10)] == [alice1]
    assert await store.delete_envelopes(bob, 1, [bob1]) == 0
    assert await store.delete_envelopes(bob, 2, []) == 0


async def test_sweep_removes_expired(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    await send(store, alice, "old", bob, expires=NOW + 10)
    await send(store, alice, "new", bob, expires=NOW + DAY)
    await store.put_registration_session(RegistrationSession(b"a" * 32, PHONE_A, b"h", 0, NOW + 10))
    await store.put_registration_session(
        RegistrationSession(b"b" * 32, PHONE_B, b"h", 0, NOW + DAY)
    )
    await store.claim_code_send(PHONE_A, NOW, lambda _: 5, 5)  # its run is over at NOW + 10

    result = await store.sweep(NOW + 10)
    assert (result.envelopes, result.sent_records, result.verifications) == (1, 1, 2)
    assert [e.body for e in await store.fetch_envelopes(bob, 1, 10)] == ["body-new-1"]
    assert await store.get_registration_session(b"a" * 32) is None
    assert await store.get_registration_session(b"b" * 32) is not None
    # The idempotency record of "old" is gone: its client id is fresh again.
    assert (await send(store, alice, "old", bob)).duplicate is False
    assert (await send(store, alice, "new", bob)).duplicate is True

    nothing = await store.sweep(NOW + 10)
    assert (nothing.envelopes, nothing.sent_records, nothing.verifications) == (0, 0, 0)


async def test_many_concurrent_writes(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    results = await asyncio.gather(*(send(store, alice, f"c{i}", bob) for i in range(300)))
    assert not any(r.duplicate for r in results)
    assert len(await store.fetch_envelopes(bob, 1, 1000)) == 300


async def test_data_survives_close_and_reopen(make: Factory) -> None:
    async with make() as store:
        alice = await register(store, PHONE_A)
        bob = await register(store, PHONE_B)
        await with_keys(store, bob, 3, fallback=True)
        await store.set_username(alice, "alice")
        await send(store, alice, "c1", bob)
        session = RegistrationSession(b"c" * 32, PHONE_C, b"h", 2, NOW)
        await store.put_registration_session(session)

    async with make() as reopened:
        a = await reopened.get_account_by_username("alice")
        assert a is not None and a.id == alice and a.phone == PHONE_A
        assert await reopened.count_one_time_keys(bob, 1) == 3
        envelopes = await reopened.fetch_envelopes(bob, 1, 10)
        assert [e.body for e in envelopes] == ["body-c1-1"]
        assert (await send(reopened, alice, "c1", bob)).duplicate is True
        assert await reopened.get_registration_session(b"c" * 32) == session


async def test_same_instance_can_reopen(make: Factory) -> None:
    store = make()
    async with store:
        alice = await register(store, PHONE_A)
    async with store:
        assert await store.get_account(alice) is not None


async def test_calls_after_close_are_refused_not_left_waiting(make: Factory) -> None:
    store = make()
    async with store:
        alice = await register(store, PHONE_A)
    for call in (
        store.ping(),
        store.get_account(alice),
        send(store, alice, "c1", alice),
        store.delete_envelopes(alice, 1, [1]),
    ):
        with pytest.raises(StoreError):
            await asyncio.wait_for(call, 5)


async def test_leaving_answers_every_waiting_call(make: Factory) -> None:
    store = make()
    async with store:
        alice = await register(store, PHONE_A)
        bob = await register(store, PHONE_B)
        pending = [asyncio.ensure_future(send(store, alice, f"c{i}", bob)) for i in range(200)]
        await asyncio.sleep(0)  # queued, and some perhaps written, as the store closes
    done, waiting = await asyncio.wait(pending, timeout=10)
    assert not waiting  # each one stored or refused, none left waiting
    for task in done:
        assert task.exception() is None or isinstance(task.exception(), StoreError)


# What the two stores did differently before they shared their queries (issue 7) --------------


async def _add_device(store: Store, account_id: str, device_id: int, curve: str) -> None:
    """A device beyond the first (linking comes later): written with the stores' own
    query machinery, so it runs the same on both backends."""

    def op() -> Op[None]:
        yield count(
            "INSERT INTO devices (account_id, device_id, registration_id, name, password_hash,"
            " created, last_seen_day, curve25519, ed25519, signature)"
            " VALUES (?, ?, 1, 'extra', ?, ?, 0, ?, ?, 'sig')",
            account_id,
            device_id,
            b"h" * 32,
            NOW,
            curve,
            f"ed-{curve}",
        )

    await store._write(op)  # type: ignore[attr-defined]


async def test_claimed_keys_come_in_device_order(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await store.set_identity(alice, 1, "m", "z-curve-1", "ed-1", "sig")
    # Written in another order than the device ids, with identity keys in a third order.
    for device_id, curve in ((7, "a-curve"), (3, "m-curve"), (5, "c-curve")):
        await _add_device(store, alice, device_id, curve)
    claimed = await store.claim_keys(alice, None)
    assert [c.device.device_id for c in claimed] == [1, 3, 5, 7]
    assert [c.device.device_id for c in await store.claim_keys(alice, [7, 3])] == [3, 7]
    assert [d.device_id for d in await store.list_devices(alice)] == [1, 3, 5, 7]


async def test_touch_device_writes_a_new_day_only(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await store.touch_device(alice, 1, 20_000)
    await store.touch_device(alice, 1, 20_000)
    assert (await store.list_devices(alice))[0].last_seen_day == 20_000
    await store.touch_device(alice, 1, 19_999)  # a clock set back: the day it says
    assert (await store.list_devices(alice))[0].last_seen_day == 19_999
    await store.touch_device(alice, 9, 20_001)  # no such device: nothing, no error


async def test_a_failed_operation_rolls_back_its_own_writes(store: Store) -> None:
    alice = await register(store, PHONE_A)

    def half_done() -> Op[None]:
        yield count("UPDATE accounts SET username = 'partial' WHERE id = ?", alice)
        raise RuntimeError("boom")

    results = await asyncio.gather(
        store._write(half_done),  # type: ignore[attr-defined]
        store.set_discoverable(alice, False),
        return_exceptions=True,
    )
    assert isinstance(results[0], RuntimeError)
    account = await store.get_account(alice)
    assert account is not None
    assert account.username is None  # rolled back (a savepoint, or its own transaction)
    assert account.discoverable is False  # the other operation is untouched


async def test_a_refused_username_leaves_the_rest_of_its_batch(store: Store) -> None:
    alice = await register(store, PHONE_A)
    bob = await register(store, PHONE_B)
    await store.set_username(alice, "alice")
    results = await asyncio.gather(
        store.set_discoverable(alice, False),
        store.set_username(bob, "alice"),
        send(store, alice, "c1", bob),
        store.set_block(bob, alice, True),
        return_exceptions=True,
    )
    assert isinstance(results[1], UsernameTaken)
    assert results[2].duplicate is False  # type: ignore[union-attr]
    b = await store.get_account(bob)
    assert b is not None and b.username is None
    assert await store.list_blocks(bob) == [alice]
    assert len(await store.fetch_envelopes(bob, 1, 10)) == 1


async def test_a_number_registered_twice_at_once_has_one_account(store: Store) -> None:
    results = await asyncio.gather(
        *(store.register(PHONE_A, b"h" * 32, 42, f"d{i}", NOW, str(uuid.uuid4())) for i in range(5))
    )
    assert len({account_id for account_id, _, _ in results}) == 1
    assert sum(not replaced for _, _, replaced in results) == 1
    account_id = results[0][0]
    assert len(await store.list_devices(account_id)) == 1


async def test_queries_read_what_they_wrote_in_one_operation(store: Store) -> None:
    def op() -> Op[int]:
        yield count("INSERT INTO blocks (account_id, blocked_id) VALUES (?, ?)", "a", "b")
        return int((yield value("SELECT COUNT(*) FROM blocks WHERE account_id = ?", "a")))

    assert await store._write(op) == 1  # type: ignore[attr-defined]


# Shared payloads (spec A, migration 5) ------------------------------------------------------


async def _scalar(store: Store, sql: str) -> int:
    def op() -> Op[int]:
        return int((yield value(sql)) or 0)

    return int(await store._read(op))  # type: ignore[attr-defined]


async def _shared_send(store: Store, client_id: str, body: str, *accounts: str) -> StoredMessage:
    """Device 1 of each account gets the shared body; the first also its own on device 2."""
    dests = [OutgoingDestination(a, (OutgoingCopy(1, None, None),)) for a in accounts]
    return await store.store_message(
        accounts[0], 1, client_id, dests, SharedPayload(2, body), NOW, NOW + DAY
    )


async def test_a_shared_payload_is_stored_once_and_fetched_by_every_device(store: Store) -> None:
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    body = "S" * 4000
    stored = await _shared_send(store, "g1", body, alice, bob, carol)
    assert [(e.account_id, e.kind, e.body) for e in stored.envelopes] == [
        (a, 2, body) for a in (alice, bob, carol)
    ]
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 1
    # Stored once: the envelopes hold no copy of it.
    assert await _scalar(store, "SELECT SUM(LENGTH(body)) FROM payloads") == len(body)
    assert await _scalar(store, "SELECT SUM(LENGTH(body)) FROM envelopes") == 0
    for account in (alice, bob, carol):
        [env] = await store.fetch_envelopes(account, 1, 10)
        assert (env.kind, env.body, env.sender_account) == (2, body, alice)
    # A resend stores nothing more.
    again = await _shared_send(store, "g1", body, alice, bob, carol)
    assert again.duplicate and await _scalar(store, "SELECT COUNT(*) FROM payloads") == 1


async def test_own_and_shared_copies_mix_in_one_send(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    dests = [
        OutgoingDestination(bob, (OutgoingCopy(1, 1, "own"), OutgoingCopy(2, None, None))),
    ]
    stored = await store.store_message(alice, 1, "m", dests, SharedPayload(2, "sh"), NOW, NOW + DAY)
    assert [(e.device_id, e.kind, e.body) for e in stored.envelopes] == [
        (1, 1, "own"),
        (2, 2, "sh"),
    ]
    assert [e.body for e in await store.fetch_envelopes(bob, 2, 10)] == ["sh"]
    assert [e.body for e in await store.fetch_envelopes(bob, 1, 10)] == ["own"]


async def test_the_payload_goes_with_its_last_envelope(store: Store) -> None:
    alice, bob, carol = [await register(store, p) for p in (PHONE_A, PHONE_B, PHONE_C)]
    stored = await _shared_send(store, "g1", "body", alice, bob, carol)
    ids = {e.account_id: e.id for e in stored.envelopes}
    assert await store.delete_envelopes(alice, 1, [ids[alice]]) == 1
    assert await store.delete_envelopes(bob, 1, [ids[bob]]) == 1
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 1  # carol's still points
    [env] = await store.fetch_envelopes(carol, 1, 10)
    assert env.body == "body"
    assert await store.delete_envelopes(carol, 1, [ids[carol]]) == 1
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0  # promptly, no sweep


async def test_removing_a_device_or_account_releases_its_payloads(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    await _shared_send(store, "g1", "b1", bob)  # bob's device 1 only
    assert await store.delete_device(bob, 1)
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0
    await _shared_send(store, "g2", "b2", alice)
    await store.register(PHONE_A, b"p" * 32, 7, "new", NOW, str(uuid.uuid4()))  # re-registers
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0


async def test_the_sweep_removes_expired_and_orphaned_payloads(store: Store) -> None:
    alice, bob = await register(store, PHONE_A), await register(store, PHONE_B)
    await _shared_send(store, "g1", "old", alice, bob)

    def orphan() -> Op[int]:  # as two nodes racing on the last two acks could leave one
        return int(
            (
                yield count(
                    "INSERT INTO payloads (kind, body, expires) VALUES (2, 'x', ?)", NOW + 10 * DAY
                )
            )
        )

    await store._write(orphan)  # type: ignore[attr-defined]
    result = await store.sweep(NOW + DAY)
    assert (result.envelopes, result.payloads) == (2, 2)
    assert await _scalar(store, "SELECT COUNT(*) FROM payloads") == 0
