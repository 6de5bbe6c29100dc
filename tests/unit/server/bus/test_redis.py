"""RedisBus between two nodes on the real Redis: what one node publishes, the other receives
as it was sent, the online-only flag and a ttl deadline included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from porch.server.bus.base import DeviceEvent
from porch.server.bus.redis import RedisBus, coalesce
from porch.server.domain import Envelope
from tests.integration.backends import REDIS_URL, require_services


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    require_services()
    a, b = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
    async with a, b:
        yield a, b


async def _received(bus: RedisBus, account: str, sender: RedisBus, event: DeviceEvent) -> Envelope:
    got: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    sub = bus.subscribe(account, 1, got.put_nowait)
    try:
        await asyncio.sleep(0.2)  # the subscription reaches Redis
        await sender.publish(account, 1, event)
        while True:
            e = (await asyncio.wait_for(got.get(), 5)).envelope
            if e is not None:  # resyncs (empty events) may come first
                return e
    finally:
        sub.close()


async def test_an_online_only_envelope_stays_online_only_across_nodes(
    nodes: tuple[RedisBus, RedisBus],
) -> None:
    a, b = nodes
    typing = Envelope.online_only("acct-eph", 1, "alice", 2, 1_700_000_000_000, 1, "ct")
    got = await _received(b, "acct-eph", a, DeviceEvent(envelope=typing))
    assert got == typing
    assert got.ephemeral and got.wire_id == 0


async def test_a_stored_envelope_crosses_nodes_unchanged(nodes: tuple[RedisBus, RedisBus]) -> None:
    a, b = nodes
    stored = Envelope(41, "acct-st", 1, "alice", 2, 1_700_000_000_000, 0, "ct")
    got = await _received(b, "acct-st", a, DeviceEvent(envelope=stored))
    assert got == stored
    assert not got.ephemeral and got.wire_id == 41


async def test_a_ttl_envelope_crosses_nodes_with_its_deadline(
    nodes: tuple[RedisBus, RedisBus],
) -> None:
    a, b = nodes
    ttl = Envelope(42, "acct-ttl", 1, "alice", 2, 1_700_000_000_000, 0, "ct", expires=1)
    got = await _received(b, "acct-ttl", a, DeviceEvent(envelope=ttl))
    assert got == ttl and got.expires == 1  # the receiving gateway checks it (spec §7)


async def test_presence_is_seen_from_every_node(nodes: tuple[RedisBus, RedisBus]) -> None:
    # Push wakes only devices connected nowhere (services/push_sender.py).
    a, b = nodes
    assert not await a.connected("acct-here", 1)
    sub = b.subscribe("acct-here", 1, lambda event: None)
    assert await b.connected("acct-here", 1)  # its own node knows without Redis
    async with asyncio.timeout(5):
        while not await a.connected("acct-here", 1):
            await asyncio.sleep(0.02)  # the subscription reaches Redis
    assert not await a.connected("acct-here", 2)
    sub.close()
    async with asyncio.timeout(5):
        while await a.connected("acct-here", 1):
            await asyncio.sleep(0.02)
    assert not await b.connected("acct-here", 1)


def test_a_batch_publishes_each_devices_envelopes_once() -> None:
    one, two = b"porch:dev:a:1", b"porch:dev:b:1"
    batch: list[tuple[bytes, bytes | list[Any]]] = [
        (one, [1, "a"]),
        (two, b'{"t":"revoke"}'),
        (one, [2, "a"]),
        (two, [3, "b"]),
        (one, [4, "a"]),
    ]
    assert [(c, orjson.loads(p)) for c, p in coalesce(batch)] == [
        (one, {"t": "envs", "e": [[1, "a"], [2, "a"], [4, "a"]]}),
        (two, {"t": "revoke"}),
        (two, {"t": "env", "e": [3, "b"]}),  # alone: the message every node reads
    ]


async def test_envelopes_of_one_tick_cross_nodes_in_order(
    nodes: tuple[RedisBus, RedisBus],
) -> None:
    a, b = nodes
    got: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    sub = b.subscribe("acct-many", 1, got.put_nowait)
    try:
        await asyncio.sleep(0.2)  # the subscription reaches Redis
        sent = [
            Envelope(i, "acct-many", 1, "alice", 2, 1_700_000_000_000, 0, f"c{i}")
            for i in (5, 6, 7)
        ]
        for e in sent:  # one tick: one publish batch
            await a.publish("acct-many", 1, DeviceEvent(envelope=e))
        received: list[Envelope] = []
        while len(received) < len(sent):
            e = (await asyncio.wait_for(got.get(), 5)).envelope
            if e is not None:
                received.append(e)
        assert received == sent
    finally:
        sub.close()
