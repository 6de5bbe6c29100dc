"""Multi-destination sends over a real server (spec A and D): raw `send` frames to several
accounts with a shared body, per-account refusals, and the SDK's sent copy to one's own
other device. Runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from porch.client import Client
from porch.crypto.content import Sent, Text, decode_content
from porch.crypto.olm import OlmCiphertext, OlmMachine
from porch.crypto.signing import MasterKey
from porch.protocol import client_frames as cf
from porch.server.store.base import PreKey, Store
from porch.server.store.postgres import PostgresStore
from porch.server.store.sql import Op, count
from porch.server.store.sqlite import SqliteStore
from tests.integration.conftest import register
from tests.integration.server import ServerProcess

SHARED = base64.b64encode(b"\x02one megolm message for everyone").decode()


class Raw:
    """One authenticated raw WebSocket session of a registered client's device 1."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, server: ServerProcess, client: Client) -> Raw:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/ws", compression=None)
        c = client.credentials
        await ws.send(json.dumps(cf.auth(c.account_id, c.device_id, c.password)))
        raw = cls(ws)
        assert (await raw.recv())["type"] == "ready"
        return raw

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def next_of(self, *types: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame["type"] in types:
                return frame

    async def envelopes(self) -> list[dict[str, Any]]:
        """Everything queued for this device, up to the `drained` marker."""
        out = []
        while (frame := await self.next_of("envelope", "drained"))["type"] == "envelope":
            out.append(frame)
        return out


def _reg(client: Client) -> int:
    return int(client.config.registration_id)


async def test_one_send_with_a_shared_body_reaches_every_device_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob, carol, dave = [await register(server, tmp_path / n) for n in "abcd"]
    raw = await Raw.open(server, alice)
    dests = [
        cf.destination(c.account_id, [cf.device_message(1, _reg(c))]) for c in (bob, carol, dave)
    ]
    await raw.send(cf.send("g-1", dests, shared=cf.shared(2, SHARED)))
    sent = await raw.next_of("sent", "error")
    assert sent["type"] == "sent" and sent["id"] == "g-1", sent
    for c in (bob, carol, dave):
        device = await Raw.open(server, c)
        [env] = await device.envelopes()
        assert (env["from"], env["kind"], env["body"]) == (alice.account_id, 2, SHARED)
        await device.send(cf.ack([env["id"]]))
        # The reader handles one frame at a time: the pong comes once the ack is committed.
        await device.send(cf.ping(1))
        await device.next_of("pong")
        await device.ws.close()
        again = await Raw.open(server, c)
        assert await again.envelopes() == []  # exactly once
        await again.ws.close()
    await raw.ws.close()


async def test_a_wrong_device_list_names_each_account_and_stores_nothing(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob, carol = [await register(server, tmp_path / n) for n in "abc"]
    raw = await Raw.open(server, alice)
    dests = [
        cf.destination(bob.account_id, [cf.device_message(1, _reg(bob))]),
        cf.destination(
            carol.account_id, [cf.device_message(1, _reg(carol)), cf.device_message(2, 7)]
        ),
    ]
    await raw.send(cf.send("w-1", dests, shared=cf.shared(2, SHARED)))
    error = await raw.next_of("error", "sent")
    assert (error["type"], error["code"], error["ref"]) == ("error", "mismatched_devices", "w-1")
    assert error["accounts"] == [
        {"account": carol.account_id, "missing": [], "extra": [2], "stale": []}
    ]
    stale = [cf.destination(bob.account_id, [cf.device_message(1, _reg(bob) ^ 1, 1, SHARED)])]
    await raw.send(cf.send("w-2", stale))
    error = await raw.next_of("error", "sent")
    assert error["code"] == "stale_devices"
    assert error["accounts"][0]["stale"] == [1]
    for c in (bob, carol):  # nothing of either send was stored for anyone
        device = await Raw.open(server, c)
        assert await device.envelopes() == []
        await device.ws.close()
    await raw.ws.close()


def _store_of(server: ServerProcess, env: dict[str, str]) -> Store:
    url = env.get("PORCH_DATABASE_URL")
    return PostgresStore(url) if url else SqliteStore(server.data_dir / "porch.db")


async def _add_keyed_device(store: Store, account: str, master: MasterKey) -> OlmMachine:
    """Device 2 of ``account``, keyed like a linked device would be (the link work adds the
    real route): its row, identity keys signed by the master key, one one-time key."""
    olm = OlmMachine.create(os.urandom(32))
    registration = 777

    def op() -> Op[int]:
        return int(
            (
                yield count(
                    "INSERT INTO devices (account_id, device_id, registration_id, name,"
                    " password_hash, created, last_seen_day) VALUES (?, 2, ?, 'second', ?, ?, 0)",
                    account,
                    registration,
                    b"h" * 32,
                    int(time.time() * 1000),
                )
            )
        )

    await store._write(op)  # type: ignore[attr-defined]
    signature = master.sign_device(account, 2, registration, olm.curve25519, olm.ed25519)
    await store.set_identity(account, 2, master.public_b64, olm.curve25519, olm.ed25519, signature)
    keys = [
        PreKey(k.key_id, k.curve25519, k.signature, False) for k in olm.generate_one_time_keys(1)
    ]
    await store.add_one_time_keys(account, 2, keys)
    return olm


async def test_the_sdk_sends_a_sent_copy_to_ones_other_device(
    server: ServerProcess, server_env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob = await register(server, tmp_path / "a"), await register(server, tmp_path / "b")
    async with alice:
        secret = alice._store.get_secret("master_key")
        assert secret is not None
        master = MasterKey.from_private_bytes(secret)
    server.stop()
    async with _store_of(server, server_env) as store:
        second = await _add_keyed_device(store, alice.account_id, master)
    server.start()
    async with alice:
        sent = await alice.send_text(bob.account_id, "hello from device 1", timeout=20)
    server.stop()
    async with _store_of(server, server_env) as store:
        [env] = await store.fetch_envelopes(alice.account_id, 2, 10)
        device1_curve = next(
            d.curve25519 for d in await store.list_devices(alice.account_id) if d.device_id == 1
        )
        assert [e.kind for e in await store.fetch_envelopes(bob.account_id, 1, 10)] == [0]
    server.start()
    assert env.kind == 0 and env.ts == sent.ts  # a pre-key message: a new session
    assert device1_curve is not None
    plain = second.decrypt(
        (alice.account_id, 1), device1_curve, OlmCiphertext(env.kind, base64.b64decode(env.body))
    )
    copy = decode_content(plain)
    assert isinstance(copy, Sent) and copy.to == bob.account_id
    assert isinstance(copy.content, Text) and copy.content.body == "hello from device 1"
    assert copy.content.id == sent.id


pytestmark = pytest.mark.timeout(120)
