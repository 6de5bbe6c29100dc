"""MessageService.check and commit with a real SQLite store: the multi-destination rules of
spec A (per-account refusals, blocked destinations, one's own account, shared bodies)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from porch.protocol import client_frames as cf
from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.hot_frames import Send, read_client_frame
from porch.server.bus.base import DeviceEvent
from porch.server.bus.memory import MemoryBus
from porch.server.metrics import Metrics
from porch.server.services.accounts import Principal
from porch.server.services.messages import MessageService
from porch.server.store.base import StoreError
from porch.server.store.sql import Op, count, value
from porch.server.store.sqlite import SqliteStore

NOW = 1_700_000_000_000
REG = 4242
BODY = "aGVsbG8"


class FakeClock:
    def now_ms(self) -> int:
        return NOW

    def monotonic(self) -> float:
        return NOW / 1000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "porch.db") as s:
        yield s


@pytest.fixture
def service(store: SqliteStore) -> MessageService:
    return MessageService(store, MemoryBus(), FakeClock(), Metrics(), 30)


async def _account(store: SqliteStore, phone: str, keyed: bool = True) -> str:
    account_id, _, _ = await store.register(phone, b"h" * 32, REG, "", NOW, str(uuid.uuid4()))
    if keyed:
        await store.set_identity(account_id, 1, "m", f"c-{account_id}", f"e-{account_id}", "s")
    return account_id


async def _second_device(store: SqliteStore, account_id: str) -> None:
    """A keyed device 2 (linking lands with the link work; the row is what counts here)."""

    def op() -> Op[int]:
        return int(
            (
                yield count(
                    "INSERT INTO devices (account_id, device_id, registration_id, name,"
                    " password_hash, curve25519, ed25519, signature, created, last_seen_day)"
                    " VALUES (?, 2, ?, '', ?, ?, ?, 's', ?, 0)",
                    account_id,
                    REG,
                    b"h" * 32,
                    f"c2-{account_id}",
                    f"e2-{account_id}",
                    NOW,
                )
            )
        )

    await store._write(op)


def _frame(dests: dict[str, list[int]], shared: bool = False, **kw: Any) -> Send:
    """A send to {account: [device ids]}; own bodies, or (shared) the shared one."""
    destinations = [
        cf.destination(
            a,
            [
                cf.device_message(d, REG) if shared else cf.device_message(d, REG, 1, BODY)
                for d in ds
            ],
        )
        for a, ds in dests.items()
    ]
    frame = cf.send(kw.pop("id", "m1"), destinations, cf.shared(2, BODY) if shared else None, **kw)
    parsed = read_client_frame(dumps(frame))
    assert isinstance(parsed, Send)
    return parsed


async def _refusal(service: MessageService, who: Principal, frame: Send) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        await service.check(who, frame)
    return info.value


async def _rows(store: SqliteStore, table: str) -> int:
    def op() -> Op[int]:
        return int((yield value(f"SELECT COUNT(*) FROM {table}")))

    return await store._read(op)


async def test_every_wrong_account_is_named_and_nothing_is_stored(
    store: SqliteStore, service: MessageService
) -> None:
    alice, bob, carol, dave = [await _account(store, f"+1415555010{i}") for i in range(4)]
    await _second_device(store, carol)
    me = Principal(alice, 1)
    # bob right, carol missing device 2, dave given a device 3 he does not have.
    err = await _refusal(service, me, _frame({bob: [1], carol: [1], dave: [1, 3]}))
    assert err.code is ErrorCode.MISMATCHED_DEVICES and err.details["ref"] == "m1"
    assert err.details["accounts"] == [
        {"account": carol, "missing": [2], "extra": [], "stale": []},
        {"account": dave, "missing": [], "extra": [3], "stale": []},
    ]
    assert await _rows(store, "envelopes") == 0 and await _rows(store, "sent_messages") == 0


async def test_stale_only_is_stale_devices(store: SqliteStore, service: MessageService) -> None:
    alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
    frame = read_client_frame(
        dumps(cf.send("s", [cf.destination(bob, [cf.device_message(1, REG + 1, 1, BODY)])]))
    )
    assert isinstance(frame, Send)
    err = await _refusal(service, Principal(alice, 1), frame)
    assert err.code is ErrorCode.STALE_DEVICES
    assert err.details["accounts"] == [{"account": bob, "missing": [], "extra": [], "stale": [1]}]


async def test_unkeyed_accounts(store: SqliteStore, service: MessageService) -> None:
    alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
    nokeys = await _account(store, "+14155550102", keyed=False)
    unknown = str(uuid.uuid4())
    me = Principal(alice, 1)
    # Every destination without keys: unknown_recipient, as a 1:1 send has always had.
    err = await _refusal(service, me, _frame({nokeys: [1], unknown: [1]}))
    assert err.code is ErrorCode.UNKNOWN_RECIPIENT
    # Beside a keyed one, its devices are extra.
    err = await _refusal(service, me, _frame({bob: [1], nokeys: [1]}))
    assert err.code is ErrorCode.MISMATCHED_DEVICES
    assert err.details["accounts"] == [
        {"account": nokeys, "missing": [], "extra": [1], "stale": []}
    ]


async def test_own_account_lists_exactly_the_other_devices(
    store: SqliteStore, service: MessageService
) -> None:
    alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
    me = Principal(alice, 1)
    # Never the sending device itself.
    err = await _refusal(service, me, _frame({bob: [1], alice: [1]}))
    assert err.details["accounts"] == [{"account": alice, "missing": [], "extra": [1], "stale": []}]
    await _second_device(store, alice)
    service._forget(alice)  # as the bus would tell it
    # Listed, one's own account must name device 2; a sent copy goes there.
    err = await _refusal(service, me, _frame({bob: [1], alice: [1, 2]}, id="m2"))
    assert err.details["accounts"] == [{"account": alice, "missing": [], "extra": [1], "stale": []}]
    checked = await service.check(me, _frame({bob: [1], alice: [2]}, id="m3"))
    await service.commit(checked)
    assert [e.body for e in await store.fetch_envelopes(alice, 2, 10)] == [BODY]
    assert await store.fetch_envelopes(alice, 1, 10) == []
    # Only listed accounts are checked: leaving one's own out is a send without copies.
    await service.commit(await service.check(me, _frame({bob: [1]}, id="m4")))


async def test_blocked_destinations_are_skipped(
    store: SqliteStore, service: MessageService
) -> None:
    alice, bob, carol = [await _account(store, f"+1415555010{i}") for i in range(3)]
    await store.set_block(bob, alice, True)
    me = Principal(alice, 1)
    checked = await service.check(me, _frame({bob: [1], carol: [1]}, shared=True))
    assert [d.account for d in checked.destinations] == [carol] and not checked.drop
    await service.commit(checked)
    assert await store.fetch_envelopes(bob, 1, 10) == []
    [env] = await store.fetch_envelopes(carol, 1, 10)
    assert (env.kind, env.body) == (2, BODY)
    # Every destination blocks: acknowledged, stored nowhere.
    only_bob = await service.check(me, _frame({bob: [1]}, id="m2"))
    assert only_bob.drop and await service.commit(only_bob) == NOW
    assert await _rows(store, "sent_messages") == 1


async def test_a_shared_body_is_stored_once_for_every_device(
    store: SqliteStore, service: MessageService
) -> None:
    alice, bob, carol = [await _account(store, f"+1415555010{i}") for i in range(3)]
    await _second_device(store, bob)
    me = Principal(alice, 1)
    await service.commit(await service.check(me, _frame({bob: [1, 2], carol: [1]}, shared=True)))
    assert await _rows(store, "payloads") == 1 and await _rows(store, "envelopes") == 3
    for account, device in ((bob, 1), (bob, 2), (carol, 1)):
        [env] = await store.fetch_envelopes(account, device, 10)
        assert (env.kind, env.body) == (2, BODY)


async def test_a_shared_body_nobody_kept_is_not_stored(
    store: SqliteStore, service: MessageService
) -> None:
    alice, bob, carol = [await _account(store, f"+1415555010{i}") for i in range(3)]
    await store.set_block(carol, alice, True)
    frame = read_client_frame(
        dumps(
            cf.send(
                "m1",
                [
                    cf.destination(bob, [cf.device_message(1, REG, 1, BODY)]),
                    cf.destination(carol, [cf.device_message(1, REG)]),
                ],
                cf.shared(2, BODY),
            )
        )
    )
    assert isinstance(frame, Send)
    await service.commit(await service.check(Principal(alice, 1), frame))
    assert await _rows(store, "payloads") == 0 and await _rows(store, "envelopes") == 1


async def test_an_ephemeral_send_is_never_stored(
    store: SqliteStore, service: MessageService
) -> None:
    alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
    checked = await service.check(
        Principal(alice, 1), _frame({bob: [1]}, shared=True, ephemeral=True)
    )
    await service.commit(checked)
    assert await _rows(store, "envelopes") == 0 and await _rows(store, "payloads") == 0


def _account_ids(n: int) -> list[str]:
    return [f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)]


_OWN = cf.device_message(1, REG, 1, BODY)
_SHARED_ONLY = cf.device_message(1, REG)
OUT_OF_BOUNDS: dict[str, dict[str, Any]] = {
    "1001 destinations": cf.send("b", [cf.destination(a, [_OWN]) for a in _account_ids(1001)]),
    "65 devices": cf.send(
        "b",
        [
            cf.destination(
                _account_ids(1)[0], [cf.device_message(d, REG, 1, BODY) for d in range(1, 66)]
            )
        ],
    ),
    "kind 256": cf.send(
        "b", [cf.destination(_account_ids(1)[0], [cf.device_message(1, REG, 256, BODY)])]
    ),
    "kind but no body": cf.send(
        "b", [cf.destination(_account_ids(1)[0], [{"device": 1, "registration": REG, "kind": 1}])]
    ),
    "shared missing": cf.send("b", [cf.destination(_account_ids(1)[0], [_SHARED_ONLY])]),
}


@pytest.mark.parametrize("name", list(OUT_OF_BOUNDS))
def test_sends_out_of_bounds_never_reach_the_check(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        read_client_frame(dumps(OUT_OF_BOUNDS[name]))
    assert info.value.code is ErrorCode.BAD_FRAME and info.value.details["ref"] == "b"


class MovingClock(FakeClock):
    def __init__(self) -> None:
        self.now = NOW

    def now_ms(self) -> int:
        return self.now


async def test_a_ttl_send_expires_at_its_deadline_and_is_no_longer_fetched(
    store: SqliteStore,
) -> None:
    clock, bus = MovingClock(), MemoryBus()
    service = MessageService(store, bus, clock, Metrics(), 30)
    alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
    published: list[DeviceEvent] = []
    bus.subscribe(bob, 1, published.append)
    me = Principal(alice, 1)
    await service.commit(await service.check(me, _frame({bob: [1]}, id="t", ttl=5)))
    await service.commit(await service.check(me, _frame({bob: [1]}, id="p")))
    await service.commit(await service.check(me, _frame({bob: [1]}, id="y", ttl=31_536_000)))
    # Published with its deadline (the gateway skips it live once that passed); the year-long
    # one's is cut to the retention; the idempotency records all keep the retention.
    retention = NOW + 30 * 86_400_000
    deadlines = [e.envelope.expires for e in published if e.envelope is not None]
    assert deadlines == [NOW + 5_000, None, retention]
    assert await _rows(store, f"envelopes WHERE expires = {retention}") == 2
    assert await _rows(store, f"sent_messages WHERE expires = {retention}") == 3
    bob_1 = Principal(bob, 1)
    assert len(await service.fetch(bob_1, 10)) == 3
    clock.now = NOW + 5_000  # the 5 s ttl ran out: not handed out, and deleted
    assert [e.body for e in await service.fetch(bob_1, 10)] == [BODY, BODY]
    assert await _rows(store, "envelopes") == 2
    clock.now = retention
    assert await service.fetch(bob_1, 10) == []


class CountingStore(SqliteStore):
    """The real SQLite store, counting the batches of sends it is handed."""

    batches: list[int]

    def store_messages(self, sends: Any) -> Any:
        self.batches.append(len(sends))
        return super().store_messages(sends)


async def test_a_ticks_sends_are_one_batch_answered_in_order_after_their_announcement(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    async with CountingStore(tmp_path / "porch.db") as store:
        store.batches = []
        service = MessageService(store, bus, FakeClock(), Metrics(), 30)
        alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
        me = Principal(alice, 1)
        log: list[Any] = []
        bus.subscribe(bob, 1, lambda e: log.append(("published", e.envelope and e.envelope.id)))
        checked = [await service.check(me, _frame({bob: [1]}, id=f"m{i}")) for i in range(3)]
        again = await service.check(me, _frame({bob: [1]}, id="m0"))  # a resend, same tick
        done = asyncio.Event()

        def answered(i: int, outcome: Any) -> None:
            log.append(("done", i, outcome))
            if i == 3:
                done.set()

        for i, c in enumerate([*checked, again]):
            service.submit(c, functools.partial(answered, i))
        assert log == []  # nothing before the batch is written
        await done.wait()
        assert store.batches == [4]
        published = [entry[1] for entry in log if entry[0] == "published"]
        assert len(published) == 3 and published == sorted(published)
        # Each send's envelope is announced before its sender is answered; the resend is
        # answered with the first one's timestamp and announced nowhere.
        kinds = [entry[0] for entry in log]
        assert kinds == ["published", "done"] * 3 + ["done"]
        assert [entry[1:] for entry in log if entry[0] == "done"] == [(i, NOW) for i in range(4)]
        assert await _rows(store, "envelopes") == 3


async def test_a_batch_the_store_cannot_take_fails_every_send_of_it(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "porch.db") as store:
        service = MessageService(store, MemoryBus(), FakeClock(), Metrics(), 30)
        alice, bob = await _account(store, "+14155550100"), await _account(store, "+14155550101")
        checked = [
            await service.check(Principal(alice, 1), _frame({bob: [1]}, id=f"m{i}"))
            for i in range(2)
        ]
    outcomes: list[Any] = []
    for c in checked:  # the store is closed now
        service.submit(c, outcomes.append)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(outcomes) == 2 and all(isinstance(o, StoreError) for o in outcomes)


async def test_a_device_connected_here_gets_no_wake_up_the_others_do(
    store: SqliteStore,
) -> None:
    """A connection on this node took the envelope: the device is online, counted once per
    batch; only the devices nobody here took are handed to push (push_sender.py decides)."""
    bus = MemoryBus()
    woken: list[tuple[str, int]] = []
    online: list[int] = []
    service = MessageService(
        store,
        bus,
        FakeClock(),
        Metrics(),
        30,
        wake=lambda account, device: woken.append((account, device)),
        online=online.append,
    )
    alice, bob, carol = [await _account(store, f"+1415555010{i}") for i in range(3)]
    await _second_device(store, bob)
    got: list[int] = []
    bus.subscribe(bob, 1, lambda e: got.append(1))
    bus.subscribe(carol, 1, lambda e: got.append(2))
    me = Principal(alice, 1)
    await service.commit(await service.check(me, _frame({bob: [1, 2], carol: [1]}, shared=True)))
    assert got == [1, 2]
    assert woken == [(bob, 2)]  # bob's second device has no connection here
    assert online == [2]  # one call for the batch
