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
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from porch.client import Client, Message
from porch.client.core.context import now_ms
from porch.crypto.content import Text, encode_content
from porch.server.app import create_app, make_store
from porch.server.clock import SystemClock
from porch.server.settings import Settings
from porch.server.store.base import Store
from tests.integration.conftest import register
from tests.integration.server import ServerProcess, free_port
from tests.integration.test_messaging import collect_messages


class SteppedClock(SystemClock):
    """The system clock, plus however far the test moved it."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return super().now_ms() + self.offset_ms


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, server_env: dict[str, str], sweep_interval: float
) -> AsyncIterator[tuple[ServerProcess, Store, SteppedClock]]:
    # Not a process: ServerProcess only names the port and reads the console SMS outbox.
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    settings = Settings(
        data_dir=srv.data_dir,
        database_url=server_env.get("PORCH_DATABASE_URL"),
        redis_url=server_env.get("PORCH_REDIS_URL"),
        sweep_interval_seconds=sweep_interval,
        code_interval_seconds=0,
        limit_code_per_address="100000/1",
        limit_register_per_address="100000/1",
    )
    clock, store = SteppedClock(), make_store(settings)
    app = create_app(settings, store=store, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=srv.port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                assert not task.done(), "the server did not start"
                await asyncio.sleep(0.05)
        yield srv, store, clock
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def send(client: Client, to: str, text: str, ttl: int | None = None) -> None:
    """A text queued as the SDK queues one (Client.send_text), with the outbox ttl that a
    disappearing message's send_content(..., ttl=) gives it; waits for the server's ack."""
    client_id, now = secrets.token_urlsafe(12), now_ms()
    store = client._store
    with store.transaction() as db:
        store.enqueue(client_id, to, encode_content(Text(client_id, text, now)), False, now, ttl)
        store.add_message(to, client_id, True, client.device_id, now, text, "pending", db)
    client._runner.wake_outbox()
    await client.wait_sent(client_id, timeout=20)


async def no_more_messages(client: Client, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        assert not isinstance(event, Message), f"unexpected message {event.text!r}"


async def test_a_mixed_backlog_delivers_only_the_live_envelopes_in_order(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    # The sweeper runs at start-up only: what goes, goes with bob's backlog read.
    async with serving(tmp_path, server_env, sweep_interval=3600) as (srv, store, clock):
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        plan = [("live 1", None), ("gone 1", 1), ("live 2", None), ("gone 2", 1), ("live 3", 3600)]
        async with alice:
            for text, ttl in plan:
                await send(alice, bob.account_id, text, ttl)
        assert await store.queue_depth() == 5
        clock.offset_ms = 1500  # bob stays offline for 1.5 s
        async with bob:
            got = await collect_messages(bob, 3, timeout=20)
            assert [m.text for m in got] == ["live 1", "live 2", "live 3"]
            await no_more_messages(bob, 1.0)
        # The backlog read deleted the two expired ones: the sweep finds nothing of them.
        assert (await store.sweep(clock.now_ms())).envelopes == 0


async def test_an_expired_envelope_is_swept_and_never_delivered(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    async with serving(tmp_path, server_env, sweep_interval=0.1) as (srv, store, clock):
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        async with alice:
            await send(alice, bob.account_id, "disappears", ttl=1)
            await send(alice, bob.account_id, "stays")
        assert await store.queue_depth() == 2
        clock.offset_ms = 1500
        deadline = time.monotonic() + 10
        while await store.queue_depth() != 1:  # the sweeper, on the server's clock
            assert time.monotonic() < deadline, "the sweep did not delete the expired envelope"
            await asyncio.sleep(0.05)
        async with bob:
            [got] = await collect_messages(bob, 1, timeout=20)
            assert got.text == "stays"
            await no_more_messages(bob, 1.0)


@pytest.mark.parametrize("ttl", [None, 60])
async def test_a_send_within_its_ttl_is_delivered(
    tmp_path: Path, server_env: dict[str, str], ttl: int | None
) -> None:
    async with serving(tmp_path, server_env, sweep_interval=0.1) as (srv, _, clock):
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        async with alice:
            await send(alice, bob.account_id, "on time", ttl)
            clock.offset_ms = 30_000  # half the ttl, and a few sweeps, later
            await asyncio.sleep(0.3)
            async with bob:
                [got] = await collect_messages(bob, 1, timeout=20)
                assert got.text == "on time"
