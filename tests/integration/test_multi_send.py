"""Multi-destination sends over a real server (spec A and D): raw `send` frames to several
accounts with a shared body, per-account refusals, and the SDK's sent copy to one's own
other device. Runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
import websockets

from porch.client import Client
from porch.protocol import client_frames as cf
from tests.integration.conftest import register
from tests.integration.server import ServerProcess
from tests.integration.test_linking import link_second, message

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


async def test_the_sdk_sends_a_sent_copy_to_ones_other_device(
    server: ServerProcess, tmp_path: Path
) -> None:
    """One frame reaches Bob and, as a `sent` copy, Alice's linked second device (spec D)."""
    alice, bob = await register(server, tmp_path / "a"), await register(server, tmp_path / "b")
    async with alice, bob:
        alice2 = await link_second(server, alice, tmp_path / "a2")
        async with alice2:
            sent = await alice.send_text(bob.account_id, "hello from device 1", timeout=20)
            got = await message(bob)
            copy = await message(alice2)
    assert (got.text, got.id, got.outgoing) == ("hello from device 1", sent.id, False)
    assert (copy.text, copy.id, copy.outgoing, copy.to) == (
        "hello from device 1",
        sent.id,
        True,
        bob.account_id,
    )


pytestmark = pytest.mark.timeout(120)
