"""Accounts, keys, blocking, typing, back-pressure, retention and operations endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from porch.client import Client, IdentityChanged, Message, TypingEvent
from porch.client.api import Credentials, HttpApi
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import MasterKey
from tests.integration.conftest import next_phone, register
from tests.integration.server import ServerProcess
from tests.integration.test_bad_input import Raw, body


async def first_message(client: Client, timeout: float = 15) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        event = await client.next_event(max(0.01, deadline - time.monotonic()))
        assert event is not None, "no message arrived"
        if isinstance(event, Message):
            return event


async def test_one_time_keys_are_handed_out_once_under_concurrent_claims(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    bob = await register_client()
    api = HttpApi(server.url, bob.credentials)
    try:
        assert await api.key_count() == 50
        claims = await asyncio.gather(*(api.claim_keys(alice.account_id) for _ in range(60)))
    finally:
        await api.aclose()
    keys = [c.devices[0].one_time_key for c in claims]
    assert all(k is not None for k in keys)
    one_time = [k.key_id for k in keys if k is not None and not k.fallback]
    fallback = [k for k in keys if k is not None and k.fallback]
    assert len(one_time) == 50 and len(set(one_time)) == 50
    assert len(fallback) == 10 and len({k.key_id for k in fallback}) == 1

    # Alice's client hears that her keys ran out and uploads more.
    async with alice:
        await alice.wait_connected(10)
        deadline = time.monotonic() + 10
        while True:
            alice_api = HttpApi(server.url, alice.credentials)
            try:
                count = await alice_api.key_count()
            finally:
                await alice_api.aclose()
            if count >= 20:
                break
            assert time.monotonic() < deadline, "keys were not replenished"
            await asyncio.sleep(0.2)


async def test_blocked_senders_messages_are_dropped(register_client) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice, bob:
        await bob.block("@alice")
        await alice.send_text("@bob", "you will not see this")  # acknowledged all the same
        assert not isinstance(await bob.next_event(1.5), Message)
        await bob.block("@alice", blocked=False)
        await alice.send_text("@bob", "unblocked now")
        assert (await first_message(bob)).text == "unblocked now"


async def test_typing_is_online_only_and_never_stored(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice, bob:
        await alice.send_text("@bob", "hi")
        await first_message(bob)
        await bob.send_text("@alice", "hey")
        await first_message(alice)
        assert await alice.set_typing(bob.account_id, True)
        deadline = time.monotonic() + 10
        while True:
            event = await bob.next_event(deadline - time.monotonic())
            assert event is not None, "no typing event"
            if isinstance(event, TypingEvent):
                assert event.sender == alice.account_id and event.started
                break
    # Bob is offline now: a typing frame is not kept for him.
    async with alice:
        await alice.wait_connected(10)
        assert await alice.flush(10)  # receipts alice owes bob are stored, as they should be
        before = server.queue_depth()
        assert await alice.set_typing(bob.account_id, False)
        await asyncio.sleep(0.5)
    assert server.queue_depth() == before


async def test_a_slow_reader_gets_at_most_the_delivery_window(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    bob = await register_client()
    sender = await Raw.open(server, alice)
    for i in range(400):
        await sender.send_to(bob, f"w{i}", body(64))
    acked = 0
    while acked < 400:
        frame = await sender.recv()
        acked += frame["type"] == "sent"
    reader = await Raw.open(server, bob)
    ids = []
    with pytest.raises(TimeoutError):
        while True:
            frame = await reader.recv(timeout=1.0)
            if frame["type"] == "envelope":
                ids.append(frame["id"])
    assert len(ids) == 256  # the default window; the rest waits in the store
    await reader.send({"type": "ack", "ids": ids[:100]})
    more = []
    with pytest.raises(TimeoutError):
        while True:
            frame = await reader.recv(timeout=1.0)
            if frame["type"] == "envelope":
                more.append(frame["id"])
    assert len(more) == 100 and min(more) > max(ids)
    await reader.ws.close()
    await sender.ws.close()


async def test_reregistration_replaces_devices_and_queued_messages(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = next_phone()
    alice = await register(server, tmp_path / "alice")
    bob_old = await register(server, tmp_path / "bob-old", phone)
    async with alice:
        await alice.send_text(bob_old.account_id, "to the old device")
    bob_new = await register(server, tmp_path / "bob-new", phone)
    assert bob_new.account_id == bob_old.account_id
    # The old device's credentials are void, and what was queued for it is gone.
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/v1/accounts/me", auth=bob_old.credentials.basic())
        assert r.status_code == 401
    assert server.queue_depth() == 0
    # Alice's next message reaches the new device: her client learns the new device keys.
    async with alice, bob_new:
        await alice.send_text(bob_new.account_id, "to the new device")
        assert (await first_message(bob_new)).text == "to the new device"
        changed = False
        while (event := await alice.next_event(0.5)) is not None:
            changed = changed or isinstance(event, IdentityChanged)
        assert changed, "alice was not told that bob's identity changed"


async def test_usernames_discoverability_and_directory(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client(username="Alice_1")
    bob = await register_client()
    assert alice.config.username == "alice_1"
    api = HttpApi(server.url, bob.credentials)
    try:
        assert await api.lookup(username="@ALICE_1") == alice.account_id
        assert await api.lookup(phone=alice.config.phone) == alice.account_id
        alice_api = HttpApi(server.url, alice.credentials)
        await alice_api.set_discoverable(False)
        await alice_api.aclose()
        with pytest.raises(Exception) as err:
            await api.lookup(phone=alice.config.phone)
        assert getattr(err.value, "code", None) == "not_found"
        assert await api.lookup(username="alice_1") == alice.account_id
    finally:
        await api.aclose()


async def test_directory_lookups_are_rate_limited(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"PORCH_LIMIT_DIRECTORY_PER_ACCOUNT": "5/3600"})
    server.start()
    try:
        client = await register(server, tmp_path / "p")
        api = HttpApi(server.url, client.credentials)
        codes = []
        for i in range(7):
            try:
                await api.lookup(phone=f"+1415555{9000 + i}")
            except Exception as exc:
                codes.append(getattr(exc, "code", None))
        await api.aclose()
        assert codes == ["not_found"] * 5 + ["rate_limited"] * 2
    finally:
        server.stop()


async def test_undelivered_envelopes_expire(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        env={"PORCH_RETENTION_DAYS": str(1 / 86400), "PORCH_SWEEP_INTERVAL_SECONDS": "0.2"},
    )
    server.start()
    try:
        alice = await register(server, tmp_path / "a")
        bob = await register(server, tmp_path / "b")
        async with alice:
            await alice.send_text(bob.account_id, "short-lived")
        await asyncio.sleep(2.0)
        async with bob:
            assert not isinstance(await bob.next_event(1.5), Message)
    finally:
        server.stop()


async def test_operations_endpoints_and_graceful_shutdown(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    bob = await register_client()
    async with alice, bob:
        await alice.send_text(bob.account_id, "metrics")
        await first_message(bob)
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/readyz")).json() == {"status": "ready"}
            text = (await http.get("/metrics")).text
            spec = (await http.get("/openapi.json")).json()
    for name in (
        "porch_connections 2.0",
        "porch_messages_stored_total",
        "porch_send_to_deliver_seconds_bucket",
        "porch_frames_in_total",
        "porch_queue_depth",
    ):
        assert name in text
    assert "/v1/keys/{account_id}/claim" in spec["paths"]
    # SIGTERM: connections close, the lifespan's shutdown (store flush and close) completes.
    # uvicorn re-raises the signal after its clean shutdown, so the status is -SIGTERM.
    assert server.stop() in (0, -15)
    assert "Application shutdown complete" in server.log_path.read_text()


def test_console_sms_outbox_lines(server: ServerProcess) -> None:
    phone = next_phone()
    r = httpx.post(f"{server.url}/v1/registration/code", json={"phone": phone})
    assert r.status_code == 202
    line = json.loads((server.data_dir / "sms-outbox.jsonl").read_text().splitlines()[-1])
    assert line["phone"] == phone and len(line["code"]) == 6 and line["ts"] > 0
    assert "DEVELOPMENT MODE" in server.log_path.read_text()


async def test_master_key_chain_is_checked_by_the_sdk(
    server: ServerProcess, register_client
) -> None:
    """A device whose binding was not made by the account's master key is refused by clients,
    even though here it is the server that would have to lie: simulate by checking the SDK's
    verifier directly against a bundle with a swapped master key."""
    alice = await register_client()
    bob = await register_client()
    api = HttpApi(server.url, bob.credentials)
    try:
        bundle = await api.claim_keys(alice.account_id)
    finally:
        await api.aclose()
    forged = type(bundle)(bundle.account_id, MasterKey.generate().public_b64, bundle.devices)
    from porch.client.errors import IdentityError

    with pytest.raises(IdentityError):
        bob._verify_bundle(forged, check_one_time_keys=True)
    bob._verify_bundle(bundle, check_one_time_keys=True)
    _ = (OlmMachine, Credentials)


async def test_reregistration_ends_the_old_devices_connection(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = next_phone()
    old = await register(server, tmp_path / "old", phone)
    raw = await Raw.open(server, old)
    await register(server, tmp_path / "new", phone)
    import websockets

    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(10):
            await raw.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_key_claims_are_rate_limited(tmp_path: Path, server_env: dict[str, str]) -> None:
    env = dict(server_env, PORCH_LIMIT_KEY_CLAIMS_PER_ACCOUNT="3/3600")
    srv = ServerProcess(tmp_path / "claims", env=env)
    srv.start()
    try:
        alice = await register(srv, tmp_path / "a")
        bob = await register(srv, tmp_path / "b")
        api = HttpApi(srv.url, bob.credentials)
        try:
            for _ in range(3):
                await api.claim_keys(alice.account_id)
            with pytest.raises(Exception) as err:
                await api.claim_keys(alice.account_id)
            assert getattr(err.value, "code", None) == "rate_limited"
            assert (await api.get_keys(alice.account_id)).devices  # reading is not claiming
        finally:
            await api.aclose()
    finally:
        srv.stop()


async def test_backlog_comes_in_envelopes_batches_when_asked(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    bob = await register_client()
    sender = await Raw.open(server, alice)
    for i in range(70):
        await sender.send_to(bob, f"b{i}", body(8 + i))
    sent = 0
    while sent < 70:
        sent += (await sender.recv())["type"] == "sent"
    import websockets

    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/ws", compression=None)
    c = bob.credentials
    await ws.send(
        json.dumps(
            {
                "type": "auth",
                "account": c.account_id,
                "device": c.device_id,
                "password": c.password,
                "batch": True,
            }
        )
    )
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == "drained":
            break
        frames.append(frame)
    assert [f["type"] for f in frames] == ["ready", "envelopes", "envelopes"]
    items = frames[1]["items"] + frames[2]["items"]
    assert [len(frames[1]["items"]), len(frames[2]["items"])] == [64, 6]
    assert [i["body"] for i in items] == [body(8 + i) for i in range(70)]
    assert all(i["type"] == "envelope" and i["from"] == alice.account_id for i in items)
    await ws.close()
    await sender.ws.close()
