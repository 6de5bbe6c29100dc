"""Several Porch nodes on PostgreSQL and Redis: cross-node delivery, a node killed, Redis
restarted, and `porch serve --workers`. Real services, real processes, loopback only."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from porch.client import Client, Message, ReceiptEvent, TypingEvent
from tests.integration.backends import fresh_database, require_services
from tests.integration.conftest import next_phone
from tests.integration.failover import FailoverProxy
from tests.integration.server import ServerProcess, free_port


class RedisProcess:
    """A Redis server of the test's own, so that it can be restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def cluster_env() -> Iterator[dict[str, str]]:
    require_services()
    redis = RedisProcess()
    redis.start()
    try:
        for url in fresh_database():
            yield {"PORCH_DATABASE_URL": url, "PORCH_REDIS_URL": redis.url, "_redis": redis}  # type: ignore[dict-item]
    finally:
        redis.stop()


@pytest.fixture
def nodes(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[list[ServerProcess]]:
    env = {k: v for k, v in cluster_env.items() if not k.startswith("_")}
    env["PORCH_RESYNC_SECONDS"] = "2"
    started = [ServerProcess(tmp_path / f"node{i}", env=env) for i in range(3)]
    for node in started:
        node.start()
    yield started
    for node in started:
        node.stop()


async def register_on(node: ServerProcess, profile: Path, server: str | None = None) -> Client:
    phone = next_phone()

    async def read_code() -> str:
        return node.last_code(phone)

    await Client.register(node.url, phone, read_code, profile)
    return Client(profile, server=server)


async def collect(client: Client, into: list[Message]) -> None:
    """Append every message the client receives, until cancelled."""
    async for event in client.events():
        if isinstance(event, Message):
            into.append(event)


async def messages(client: Client, count: int, timeout: float) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"{len(got)} of {count} arrived"
        event = await client.next_event(deadline - time.monotonic())
        if isinstance(event, Message):
            got.append(event)
    return got


async def test_users_on_different_nodes_talk(nodes: list[ServerProcess], tmp_path: Path) -> None:
    alice = await register_on(nodes[0], tmp_path / "a", server=nodes[0].url)
    bob = await register_on(nodes[1], tmp_path / "b", server=nodes[1].url)
    async with alice, bob:
        await alice.send_text(bob.account_id, "across nodes")
        assert (await messages(bob, 1, 10))[0].text == "across nodes"
        await bob.send_text(alice.account_id, "and back")
        assert (await messages(alice, 1, 10))[0].text == "and back"
        assert await alice.set_typing(bob.account_id, True)
        deadline = time.monotonic() + 10
        kinds: set[type] = set()
        while TypingEvent not in kinds:
            event = await bob.next_event(deadline - time.monotonic())
            assert event is not None, f"bob saw only {kinds}"
            kinds.add(type(event))
        # Alice's delivery receipt for "and back" crossed nodes too.
        deadline = time.monotonic() + 10
        while True:
            event = await bob.next_event(deadline - time.monotonic())
            assert event is not None
            if isinstance(event, ReceiptEvent):
                break


async def test_a_killed_node_loses_nothing(nodes: list[ServerProcess], tmp_path: Path) -> None:
    ports = [n.port for n in nodes]
    async with (
        FailoverProxy([ports[0], ports[2], ports[1]]) as lb_a,
        FailoverProxy([ports[1], ports[2], ports[0]]) as lb_b,
    ):
        alice = await register_on(nodes[0], tmp_path / "a", server=lb_a.url)
        bob = await register_on(nodes[0], tmp_path / "b", server=lb_b.url)
        total = 400
        received: list[Message] = []

        async with alice, bob, asyncio.TaskGroup() as tg:
            await alice.wait_connected(10)
            await bob.wait_connected(10)
            reader = tg.create_task(collect(bob, received))
            for i in range(total):
                await alice.send_text(bob.account_id, f"m{i}", wait=False)
            while len(received) < 50:
                await asyncio.sleep(0.01)
            nodes[1].kill()  # bob's node
            deadline = time.monotonic() + 60
            while len(received) < total:
                assert time.monotonic() < deadline, f"{len(received)} of {total}"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            reader.cancel()
        assert ports[2] in lb_b.used, "bob never moved to another node"
    ids = [m.id for m in received]
    assert len(ids) == len(set(ids)) == total
    assert {m.text for m in received} == {f"m{i}" for i in range(total)}


async def test_redis_restart_loses_nothing(
    nodes: list[ServerProcess], cluster_env: dict[str, object], tmp_path: Path
) -> None:
    redis = cluster_env["_redis"]
    assert isinstance(redis, RedisProcess)
    alice = await register_on(nodes[0], tmp_path / "a", server=nodes[0].url)
    bob = await register_on(nodes[1], tmp_path / "b", server=nodes[1].url)
    total = 300
    received: list[Message] = []

    async with alice, bob, asyncio.TaskGroup() as tg:
        await alice.wait_connected(10)
        await bob.wait_connected(10)
        reader = tg.create_task(collect(bob, received))
        for i in range(total):
            await alice.send_text(bob.account_id, f"r{i}", wait=False)
            if i == 100:
                redis.stop()
            if i == 200:
                redis.start()
            await asyncio.sleep(0.002)
        deadline = time.monotonic() + 60
        while len(received) < total:
            assert time.monotonic() < deadline, f"{len(received)} of {total}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        reader.cancel()
    ids = [m.id for m in received]
    assert len(ids) == len(set(ids)) == total


async def test_serve_with_workers(cluster_env: dict[str, object], tmp_path: Path) -> None:
    env = {k: str(v) for k, v in cluster_env.items() if not k.startswith("_")}
    node = ServerProcess(tmp_path / "workers", env=env)
    node.extra_args = ["--workers", "2"]
    node.start()
    try:
        clients = [await register_on(node, tmp_path / f"w{i}") for i in range(4)]
        async with clients[0], clients[1], clients[2], clients[3]:
            for sender in clients:
                for receiver in clients:
                    if receiver is not sender:
                        await sender.send_text(receiver.account_id, f"{sender.account_id[:4]}")
            for receiver in clients:
                assert len(await messages(receiver, 3, 20)) == 3
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{node.url}/readyz")).status_code == 200
    finally:
        node.stop()
