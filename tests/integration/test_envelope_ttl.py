"""Envelopes that expire (spec §7), end to end on SQLite and on PostgreSQL + Redis: a send
with a ttl to an offline device is never delivered once the ttl has passed, and is deleted by
the backlog read or by the sweep; sends without one are delivered as before, in order.

The server runs in this process (uvicorn on loopback, as in test_sweep_fault) so that its
clock is a collaborator the test moves forward instead of sleeping through the ttl. The clients
are the real SDK on their own clock: the outbox writes the ttl it has left into the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from porch.client import Client, Message, TimerChanged
from porch.server.app import create_app, make_store
from porch.server.clock import SystemClock
from porch.server.store.base import Store
from tests.integration.conftest import register
from tests.integration.server import (
    ServerProcess,
    free_port,
    in_process_settings,
    serving_in_process,
)
from tests.integration.test_messaging import collect_messages


class SteppedClock(SystemClock):
    """The system clock, plus however far the test moved it."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return super().now_ms() + self.offset_ms


@dataclass
class Served:
    store: Store
    clock: SteppedClock
    alice: Client
    bob: Client


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, server_env: dict[str, str], sweep_interval: float
) -> AsyncIterator[Served]:
    """A server in this process on a clock the test moves, and two accounts on it."""
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    settings = in_process_settings(srv, server_env, sweep_interval_seconds=sweep_interval)
    clock, store = SteppedClock(), make_store(settings)
    async with serving_in_process(create_app(settings, store=store, clock=clock), srv.port):
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        yield Served(store, clock, alice, bob)


async def send(client: Client, to: str, text: str, ttl: int | None = None) -> None:
    """A text sent with the envelope ttl a disappearing message gets (send_content's ``ttl``;
    the text itself carries no timer here, only its envelopes expire); waits for the ack."""
    await client.send_content(to, client.new_text(to, text), ttl=ttl, timeout=20)


async def no_more_messages(client: Client, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        assert not isinstance(event, Message), f"unexpected message {event.text!r}"


async def test_a_mixed_backlog_delivers_only_the_live_envelopes_in_order(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    # The sweeper runs at start-up only: what goes, goes with bob's backlog read.
    async with serving(tmp_path, server_env, sweep_interval=3600) as s:
        plan = [("live 1", None), ("gone 1", 1), ("live 2", None), ("gone 2", 1), ("live 3", 3600)]
        async with s.alice:
            for text, ttl in plan:
                await send(s.alice, s.bob.account_id, text, ttl)
        assert await s.store.queue_depth() == 5
        s.clock.offset_ms = 1500  # bob stays offline for 1.5 s
        async with s.bob:
            got = await collect_messages(s.bob, 3, timeout=20)
            assert [m.text for m in got] == ["live 1", "live 2", "live 3"]
            await no_more_messages(s.bob, 1.0)
        # The backlog read deleted the two expired ones: the sweep finds nothing of them.
        assert (await s.store.sweep(s.clock.now_ms())).envelopes == 0


async def test_an_expired_envelope_is_swept_and_never_delivered(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    async with serving(tmp_path, server_env, sweep_interval=0.1) as s:
        async with s.alice:
            await send(s.alice, s.bob.account_id, "disappears", ttl=1)
            await send(s.alice, s.bob.account_id, "stays")
        assert await s.store.queue_depth() == 2
        s.clock.offset_ms = 1500
        deadline = time.monotonic() + 10
        while await s.store.queue_depth() != 1:  # the sweeper, on the server's clock
            assert time.monotonic() < deadline, "the sweep did not delete the expired envelope"
            await asyncio.sleep(0.05)
        async with s.bob:
            [got] = await collect_messages(s.bob, 1, timeout=20)
            assert got.text == "stays"
            await no_more_messages(s.bob, 1.0)


async def test_a_text_under_a_disappearing_timer_expires_undelivered(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    # No explicit ttl: the conversation's timer (Client.set_timer) gives the text its own.
    async with serving(tmp_path, server_env, sweep_interval=3600) as s:
        async with s.alice:
            await s.alice.set_timer(s.bob.account_id, 1)
            await s.alice.send_text(s.bob.account_id, "gone with the timer", timeout=20)
        s.clock.offset_ms = 1500
        async with s.bob:
            deadline = time.monotonic() + 20
            while not isinstance(event := await s.bob.next_event(1.0), TimerChanged):
                assert not isinstance(event, Message), f"unexpected message {event.text!r}"
                assert time.monotonic() < deadline, "the timer never arrived"
            assert (event.seconds, event.by) == (1, s.alice.account_id)
            await no_more_messages(s.bob, 1.0)
        assert await s.store.queue_depth() == 0


@pytest.mark.parametrize("ttl", [None, 60])
async def test_a_send_within_its_ttl_is_delivered(
    tmp_path: Path, server_env: dict[str, str], ttl: int | None
) -> None:
    async with serving(tmp_path, server_env, sweep_interval=0.1) as s, s.alice:
        await send(s.alice, s.bob.account_id, "on time", ttl)
        s.clock.offset_ms = 30_000  # half the ttl, and a few sweeps, later
        await asyncio.sleep(0.3)
        async with s.bob:
            [got] = await collect_messages(s.bob, 1, timeout=20)
            assert got.text == "on time"
