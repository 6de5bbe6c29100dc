"""Web Push end to end (issue 9, "Web Push"): a real `porch serve` (SQLite, and PostgreSQL +
Redis) posts to a push service on loopback. A device that is offline gets one content-free,
RFC 8291-encrypted push per burst; a connected device gets none; a push service's 410
deletes the subscription."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from porch.client import Client
from porch.server.app import make_store
from porch.server.providers.push import PushSubscription
from porch.server.settings import Settings
from tests.integration.push_service import Browser, PushRequest, PushService, check_vapid
from tests.integration.server import ServerProcess
from tests.integration.test_messaging import collect_messages


@pytest.fixture
def push_service(tmp_path: Path) -> Iterator[PushService]:
    with PushService(tmp_path) as ps:
        yield ps


@pytest.fixture
def server(
    tmp_path: Path, server_env: dict[str, str], push_service: PushService
) -> Iterator[ServerProcess]:
    env = {
        **server_env,
        "PORCH_PUSH_CA_FILE": str(push_service.cert),
        "PORCH_PUSH_ALLOW_PRIVATE_ENDPOINTS": "true",
        "PORCH_VAPID_SUBJECT": "mailto:ops@example.org",
        # Long, so that a burst never straddles two of Redis's clock-aligned windows.
        "PORCH_PUSH_COALESCE_SECONDS": "3600",
    }
    srv = ServerProcess(tmp_path / "server-data", env=env)
    srv.start()
    yield srv
    srv.stop()


async def subscribe(server: ServerProcess, client: Client, endpoint: str) -> Browser:
    browser = Browser()
    body = {"endpoint": endpoint, "expirationTime": None, "keys": browser.keys()}
    async with httpx.AsyncClient(base_url=server.url, auth=client.credentials.basic()) as http:
        r = await http.put("/v1/push/subscription", json=body)
        assert r.status_code == 204, r.text
    return browser


async def stored_subscription(server: ServerProcess, client: Client) -> PushSubscription | None:
    """The row itself, read from the server's database (SQLite file or PostgreSQL)."""
    settings = Settings(data_dir=server.data_dir, database_url=server.env.get("PORCH_DATABASE_URL"))
    async with make_store(settings) as store:
        assert client.account_id is not None
        return await store.get_push_subscription(client.account_id, 1)


def pushes_to(service: PushService, name: str) -> list[PushRequest]:
    return [r for r in service.requests if r.path == f"/push/{name}"]


async def outcome_count(server: ServerProcess, outcome: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    found = re.search(rf'^porch_pushes_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def until_count(server: ServerProcess, outcome: str, n: float) -> None:
    deadline = time.monotonic() + 15
    while await outcome_count(server, outcome) < n:
        assert time.monotonic() < deadline, f"no {n} {outcome} push(es)"
        await asyncio.sleep(0.1)


async def test_offline_device_is_woken_once_per_burst_without_content(
    server: ServerProcess, register_client, push_service: PushService
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with httpx.AsyncClient(base_url=server.url) as http:
        vapid_key = (await http.get("/v1/push/vapid")).json()["public_key"]
        assert (await http.get("/v1/push/vapid")).json()["public_key"] == vapid_key
    browser = await subscribe(server, bob, push_service.endpoint("bob"))

    async with alice:  # Bob stays offline
        await alice.send_text("@bob", "the secret plan", wait=False)
        assert await alice.flush(timeout=15)
        (push,) = push_service.wait_for(1)
        for i in range(3):
            await alice.send_text("@bob", f"and more {i}", wait=False)
        assert await alice.flush(timeout=15)
        # A device waits in the queue once, so the burst is one or more wake-ups, all coalesced.
        await until_count(server, "coalesced", 1)
    assert pushes_to(push_service, "bob") == [push]
    assert push.headers["content-encoding"] == "aes128gcm" and int(push.headers["ttl"]) > 0
    assert browser.decrypt(push.body) == b'{"t":"wake"}'  # nothing of sender or text
    token = check_vapid(push.headers["authorization"], push_service.origin, time.time())
    assert token["key"] == vapid_key and token["claims"]["sub"] == "mailto:ops@example.org"

    async with bob:  # woken, Bob connects and reads everything that waited
        got = await collect_messages(bob, 4, timeout=15)
    assert [m.text for m in got] == ["the secret plan", "and more 0", "and more 1", "and more 2"]
    # The endpoint is a capability: the server's log shows its origin at most.
    assert "/push/bob" not in server.log_path.read_text()


async def test_connected_device_gets_no_push_and_gone_deletes(
    server: ServerProcess, register_client, push_service: PushService
) -> None:
    alice = await register_client(username="alice")
    carol = await register_client(username="carol")
    dave = await register_client(username="dave")
    await subscribe(server, carol, push_service.endpoint("carol"))
    await subscribe(server, dave, push_service.endpoint("dave"))

    async with alice, carol:
        await alice.send_text("@carol", "you are online", wait=False)
        assert [m.text for m in await collect_messages(carol, 1, timeout=15)] == ["you are online"]
        await until_count(server, "online", 1)
    assert pushes_to(push_service, "carol") == []

    assert await stored_subscription(server, dave) is not None
    push_service.statuses.append(410)  # dave's browser dropped the subscription
    async with alice:
        await alice.send_text("@dave", "one", wait=False)
        assert await alice.flush(timeout=15)
        await until_count(server, "gone", 1)
    assert len(pushes_to(push_service, "dave")) == 1
    assert await stored_subscription(server, dave) is None

    # Deleting one's own subscription is idempotent; a bad one is a structured 400.
    async with httpx.AsyncClient(base_url=server.url, auth=carol.credentials.basic()) as http:
        assert (await http.delete("/v1/push/subscription")).status_code == 204
        assert (await http.delete("/v1/push/subscription")).status_code == 204
        bad = {"endpoint": "http://push.example/x", "keys": Browser().keys()}
        r = await http.put("/v1/push/subscription", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
        assert "https://" in r.json()["error"]["message"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.put("/v1/push/subscription", json=bad)
        assert r.status_code == 401 and r.json()["error"]["code"] == "auth_required"
