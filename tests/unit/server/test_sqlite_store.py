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
    CodeSlot,
    IdentityKeyTaken,
    OutgoingCopy,
    PreKey,
    RegistrationSession,
    StoreError,
    UsernameTaken,
)
from porch.server.store.migrations import MIGRATIONS
from porch.server.store.sqlite import SqliteStore

NOW = 1_700_000_000_000
DAY = 86_400_000
PHONE_A = "+14155550100"
PHONE_B = "+14155550101"
PHONE_C = "+14155550102"


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


async def _register(store: SqliteStore, phone: str, pw: bytes = b"h" * 32) -> str:
    account_id, device_id, _replaced = await store.register(
        phone, pw, 42, "laptop", NOW, str(uuid.uuid4())
    )
    assert device_id == 1
    return account_id


async def _with_keys(store: SqliteStore, account_id: str, otks: int, fallback: bool) -> None:
    # Keys of their own: an identity key belongs to one device (migration 4).
    await store.set_identity(account_id, 1, "master", f"c-{account_id}", f"e-{account_id}", "sig")
    keys = [PreKey(f"k{i:04d}", f"c{i}", f"s{i}", False) for i in range(otks)]
    if fallback:
        keys.append(PreKey("fb", "cfb", "sfb", True))
    await store.add_one_time_keys(account_id, 1, keys)


async def _send(
    store: SqliteStore,
    sender: str,
    client_id: str,
    recipient: str,
    devices: tuple[int, ...] = (1,),
    now: int = NOW,
    expires: int = NOW + DAY,
) -> Any:
    copies = [OutgoingCopy(d, 1, f"body-{client_id}-{d}") for d in devices]
    return await store.store_message(sender, 1, client_id, recipient, copies, now, expires)


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


async def test_secret_is_created_once_and_kept(store: SqliteStore, db_path: Path) -> None:
    first = await store.secret("code-hmac", b"a" * 32)
    assert first == b"a" * 32
    assert await store.secret("code-hmac", b"b" * 32) == first  # the stored one wins
    assert await store.secret("other", b"c" * 32) == b"c" * 32
    await store.__aexit__(None, None, None)
    await store.__aenter__()
    assert await store.secret("code-hmac", b"d" * 32) == first


# Accounts and devices ------------------------------------------------------------------------


async def test_register_creates_account_and_device_1(store: SqliteStore) -> None:
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


async def test_reregister_replaces_devices_keys_and_queue(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    await _with_keys(store, alice, 5, fallback=True)
    await _send(store, bob, "m1", alice)
    await _send(store, alice, "m2", bob)  # alice's outgoing mail is bob's, untouched
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


async def test_usernames(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    await store.set_username(alice, "alice")
    found = await store.get_account_by_username("alice")
    assert found is not None and found.id == alice
    with pytest.raises(UsernameTaken):
        await store.set_username(bob, "alice")
    await store.set_username(alice, None)
    assert await store.get_account_by_username("alice") is None
    await store.set_username(bob, "alice")
    await store.set_username(alice, None)  # several accounts may have no username


async def test_discoverable_blocks_touch_and_delete_device(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
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

    await _send(store, bob, "m1", alice)
    assert await store.delete_device(alice, 1) is True
    assert await store.delete_device(alice, 1) is False
    assert await store.list_devices(alice) == []
    assert await store.fetch_envelopes(alice, 1, 10) == []


# Keys ----------------------------------------------------------------------------------------


async def test_one_time_keys_and_identity(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
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


async def test_an_identity_key_belongs_to_one_device(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    mallory = await _register(store, PHONE_B)
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


async def test_migration_clears_clones_for_the_unique_indexes(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before migration 4 may hold clones: the first device keeps its keys."""
    store = SqliteStore(db_path)
    with monkeypatch.context() as m:
        m.setattr(sqlite_store, "MIGRATIONS", [x for x in MIGRATIONS if x[0] < 4])
        await store.__aenter__()
        alice = await _register(store, PHONE_A)
        await _register(store, PHONE_B)
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


async def test_claim_keys_filters_devices(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    await _with_keys(store, alice, 2, fallback=False)
    assert await store.claim_keys(alice, [2, 3]) == []
    claimed = await store.claim_keys(alice, [1])
    assert len(claimed) == 1
    assert claimed[0].device.device_id == 1
    assert claimed[0].one_time_key == PreKey("k0000", "c0", "s0", False)
    await store.claim_keys(alice, None)
    exhausted = await store.claim_keys(alice, None)
    assert exhausted[0].one_time_key is None  # no fallback uploaded


async def test_concurrent_claims_hand_out_each_key_once(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    await _with_keys(store, alice, 30, fallback=True)
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


async def test_replacing_the_fallback_key(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    await _with_keys(store, alice, 0, fallback=True)
    await store.add_one_time_keys(alice, 1, [PreKey("fb2", "c2", "s2", True)])
    claimed = await store.claim_keys(alice, None)
    assert claimed[0].one_time_key == PreKey("fb2", "c2", "s2", True)


# Registration sessions -----------------------------------------------------------------------


def _doubling(sends: int) -> int:
    return 1000 * 2 ** (sends - 1)


async def test_registration_sessions(store: SqliteStore) -> None:
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


async def test_claim_code_send_spaces_codes_per_number(store: SqliteStore) -> None:
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


async def test_concurrent_code_claims_grant_one(store: SqliteStore) -> None:
    slots = await asyncio.gather(
        *(store.claim_code_send(PHONE_A, NOW, _doubling, 60_000) for _ in range(5))
    )
    assert sum(slot.granted for slot in slots) == 1


# Messages ------------------------------------------------------------------------------------


async def test_store_message_is_idempotent_by_client_id(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    first = await _send(store, alice, "c1", bob, devices=(1, 2), now=NOW)
    assert first.duplicate is False
    assert first.ts == NOW
    assert [(e.device_id, e.body) for e in first.envelopes] == [
        (1, "body-c1-1"),
        (2, "body-c1-2"),
    ]
    assert all(e.sender_account == alice and e.sender_device == 1 for e in first.envelopes)

    again = await _send(store, alice, "c1", bob, now=NOW + 5000)
    assert again.duplicate is True
    assert again.ts == NOW  # the original timestamp
    assert again.envelopes == ()
    assert len(await store.fetch_envelopes(bob, 1, 100)) == 1

    # The key is (sender, device, client id): another sender's "c1" is a new message.
    other = await _send(store, bob, "c1", alice)
    assert other.duplicate is False
    other_device = await store.store_message(
        alice, 2, "c1", bob, [OutgoingCopy(1, 0, "x")], NOW, NOW + DAY
    )
    assert other_device.duplicate is False


async def test_fetch_envelopes_ordered_with_limit(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    ids = []
    for i in range(10):
        stored = await _send(store, alice, f"c{i}", bob, now=NOW + (10 - i))
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


async def test_delete_envelopes_only_for_the_given_device(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    to_bob = await _send(store, alice, "c1", bob, devices=(1, 2))
    to_alice = await _send(store, bob, "c2", alice)
    bob1, bob2 = (e.id for e in to_bob.envelopes)
    alice1 = to_alice.envelopes[0].id

    # Bob's device 1 names every id: only its own envelope goes.
    assert await store.delete_envelopes(bob, 1, [bob1, bob2, alice1, 999_999]) == 1
    assert await store.fetch_envelopes(bob, 1, 10) == []
    assert [e.id for e in await store.fetch_envelopes(bob, 2, 10)] == [bob2]
    assert [e.id for e in await store.fetch_envelopes(alice, 1, 10)] == [alice1]
    assert await store.delete_envelopes(bob, 1, [bob1]) == 0
    assert await store.delete_envelopes(bob, 2, []) == 0


async def test_sweep_removes_expired(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    await _send(store, alice, "old", bob, expires=NOW + 10)
    await _send(store, alice, "new", bob, expires=NOW + DAY)
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
    assert (await _send(store, alice, "old", bob)).duplicate is False
    assert (await _send(store, alice, "new", bob)).duplicate is True

    nothing = await store.sweep(NOW + 10)
    assert (nothing.envelopes, nothing.sent_records, nothing.verifications) == (0, 0, 0)


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
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    await store.set_username(alice, "alice")

    results = await _in_one_batch(
        store,
        store.set_discoverable(alice, False),
        store.set_username(bob, "alice"),  # taken: fails inside the batch
        _send(store, alice, "c1", bob),
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
    alice = await _register(store, PHONE_A)

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


async def test_many_concurrent_writes(store: SqliteStore) -> None:
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    results = await asyncio.gather(*(_send(store, alice, f"c{i}", bob) for i in range(300)))
    assert not any(r.duplicate for r in results)
    assert len(await store.fetch_envelopes(bob, 1, 1000)) == 300


# Durability ----------------------------------------------------------------------------------


async def test_data_survives_close_and_reopen(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.__aenter__()
    alice = await _register(store, PHONE_A)
    bob = await _register(store, PHONE_B)
    await _with_keys(store, bob, 3, fallback=True)
    await store.set_username(alice, "alice")
    await _send(store, alice, "c1", bob)
    session = RegistrationSession(b"c" * 32, PHONE_C, b"h", 2, NOW)
    await store.put_registration_session(session)
    await store.__aexit__(None, None, None)

    reopened = SqliteStore(db_path)
    await reopened.__aenter__()
    try:
        a = await reopened.get_account_by_username("alice")
        assert a is not None and a.id == alice and a.phone == PHONE_A
        assert await reopened.count_one_time_keys(bob, 1) == 3
        envelopes = await reopened.fetch_envelopes(bob, 1, 10)
        assert [e.body for e in envelopes] == ["body-c1-1"]
        assert (await _send(reopened, alice, "c1", bob)).duplicate is True
        assert await reopened.get_registration_session(b"c" * 32) == session
    finally:
        await reopened.__aexit__(None, None, None)


async def test_same_instance_can_reopen(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.__aenter__()
    alice = await _register(store, PHONE_A)
    await store.__aexit__(None, None, None)
    await store.__aenter__()
    try:
        assert await store.get_account(alice) is not None
    finally:
        await store.__aexit__(None, None, None)


async def test_call_after_close_raises(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.__aenter__()
    await store.__aexit__(None, None, None)
    with pytest.raises(StoreError):
        await asyncio.wait_for(store.ping(), 2.0)


async def test_a_locked_database_is_retried_not_failed(db_path: Path) -> None:
    # Another process (porch serve --workers, a backup) holds the write lock for longer than
    # busy_timeout: SQLITE_BUSY is transient, so the batch is run again, not failed.
    async with SqliteStore(db_path, busy_timeout_ms=20) as store:
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.1, other.rollback)
        release.start()
        try:
            account_id = await _register(store, PHONE_A)
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
