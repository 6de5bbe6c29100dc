"""The message path end to end: real server process, real SDK clients, real SQLite files."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from porch.client import Client, Message, NetworkTransport, ReceiptEvent
from tests.integration.conftest import BOTH_STACKS, server_env_of
from tests.integration.server import ServerProcess

# Also against the gateway on websockets (PORCH_WS_STACK=websockets; picows is the default).
server_env = pytest.fixture(params=BOTH_STACKS, name="server_env")(server_env_of)


async def collect_messages(client: Client, count: int, timeout: float) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {count} messages arrived"
        event = await client.next_event(left)
        if isinstance(event, Message):
            got.append(event)
    return got


async def test_offline_backlog_arrives_once_in_order_with_receipts(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    texts = [f"backlog message {i:03d} {'x' * (i % 7)}" for i in range(100)]
    async with alice:
        for text in texts:
            await alice.send_text("@bob", text, wait=False)
        assert await alice.flush(timeout=30), "alice's outbox did not drain"
        sent_ids = [m.client_id for m in alice.history(bob.account_id) if m.outgoing]
        assert len(sent_ids) == 100

        async with bob:  # Bob comes online only now
            got = await collect_messages(bob, 100, timeout=30)
            assert [m.text for m in got] == texts
            assert len({m.id for m in got}) == 100
            # Nothing more arrives: no duplicate.
            extra = await bob.next_event(1.0)
            assert not isinstance(extra, Message)

            delivered: set[str] = set()
            deadline = time.monotonic() + 20
            while delivered != set(sent_ids):
                assert time.monotonic() < deadline, f"{len(delivered)} of 100 receipts"
                event = await alice.next_event(deadline - time.monotonic())
                if isinstance(event, ReceiptEvent) and event.kind == "delivered":
                    delivered.update(event.ids)
            assert {m.status for m in alice.history(bob.account_id)} == {"delivered"}

            # Read receipts go when the application says so.
            await bob.mark_read(alice.account_id, [got[-1].id])
            deadline = time.monotonic() + 10
            while True:
                event = await alice.next_event(deadline - time.monotonic())
                assert event is not None, "no read receipt"
                if isinstance(event, ReceiptEvent) and event.kind == "read":
                    assert event.ids == (got[-1].id,)
                    break

    # No message text appears anywhere the server writes: database, WAL, logs.
    server.stop()
    blobs = {str(p): p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file()}
    blobs["server log"] = server.log_path.read_bytes()
    database_url = server.env.get("PORCH_DATABASE_URL")
    if database_url:
        dump = subprocess.run(["pg_dump", database_url], capture_output=True, check=True)
        assert b"CREATE TABLE public.envelopes" in dump.stdout
        blobs["pg_dump"] = dump.stdout
        for wal in Path("/var/lib/postgresql").glob("*/main/pg_wal/0*"):
            blobs[str(wal)] = wal.read_bytes()
    else:
        assert any(name.endswith("porch.db") for name in blobs)
    for name, data in blobs.items():
        assert b"backlog message" not in data, f"plaintext in {name}"
        for text in texts[:3]:
            assert text.encode() not in data, f"{text!r} found in {name}"


async def test_survives_sigkill_with_nothing_lost_or_duplicated(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    bob = await register_client()
    total = 1000
    texts = [f"crash test {i:04d}" for i in range(total)]
    received: list[Message] = []

    async def bob_receives() -> None:
        async for event in bob.events():
            if isinstance(event, Message):
                received.append(event)

    async with alice, bob:
        await alice.wait_connected(10)
        await bob.wait_connected(10)
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(bob_receives())
            for text in texts:
                await alice.send_text(bob.account_id, text, wait=False)
            # Kill the server while messages are in flight.
            deadline = time.monotonic() + 60
            while alice._store.outbox_size() > total - 150:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
            server.kill()
            acknowledged = {
                m.client_id
                for m in alice.history(bob.account_id, limit=total)
                if m.status != "pending"
            }
            assert 0 < len(acknowledged) < total, "the kill did not land mid-stream"
            server.start()
            deadline = time.monotonic() + 120
            while len(received) < total:
                assert time.monotonic() < deadline, f"{len(received)} of {total} after restart"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything duplicated would arrive now
            reader.cancel()

    ids = [m.id for m in received]
    assert len(ids) == total, f"{len(ids) - len(set(ids))} duplicates"
    assert len(set(ids)) == total
    assert {m.text for m in received} == set(texts)
    assert acknowledged <= set(ids)


class _HeldKeys(NetworkTransport):
    """The network, except that fetching one account's keys waits until released."""

    def __init__(self, account_id: str) -> None:
        super().__init__()
        self.path = f"/v1/keys/{account_id}"
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    def http_transport(self) -> httpx.AsyncBaseTransport:
        return _Gate(self)


class _Gate(httpx.AsyncBaseTransport):
    def __init__(self, held: _HeldKeys) -> None:
        self._held, self._inner = held, httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == self._held.path:
            self._held.asked.set()
            await self._held.release.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_slow_key_fetch_does_not_stall_other_senders(
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    """Bob does not know Alice's device yet, and the key directory is slow to answer for her:
    Carol's message, behind Alice's, is shown meanwhile; Alice's come in order once it does."""
    alice = await register_client(username="alice")
    carol = await register_client(username="carol")
    registered = await register_client(username="bob")
    await registered.aclose()  # reopened with the slow transport
    held = _HeldKeys(alice.account_id)
    bob = Client(registered.profile_dir, transport=held)
    async with alice, carol, bob:
        try:
            await carol.send_text("@bob", "carol 1", timeout=10)
            assert [m.text for m in await collect_messages(bob, 1, 10)] == ["carol 1"]
            await alice.send_text("@bob", "alice 1", timeout=10)
            await alice.send_text("@bob", "alice 2", timeout=10)
            await asyncio.wait_for(held.asked.wait(), 10)  # bob is fetching alice's keys
            await carol.send_text("@bob", "carol 2", timeout=10)
            assert [m.text for m in await collect_messages(bob, 1, 5)] == ["carol 2"]
        finally:
            held.release.set()
        got = await collect_messages(bob, 2, 10)
        assert [(m.sender, m.text) for m in got] == [
            (alice.account_id, "alice 1"),
            (alice.account_id, "alice 2"),
        ]
    # Everything was stored and acknowledged: shown once, never again after a reconnect.
    async with bob:
        await bob.wait_connected(10)
        deadline, late = time.monotonic() + 1.5, []
        while (left := deadline - time.monotonic()) > 0:
            event = await bob.next_event(left)
            if isinstance(event, Message):
                late.append(event)
        assert late == []
        assert [m.text for m in bob.history(alice.account_id)] == ["alice 1", "alice 2"]
