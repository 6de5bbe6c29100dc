"""InProcessTransport: the SDK against create_app() in the same event loop, without sockets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from porch.client import Client, Message
from porch.client.inprocess import InProcessTransport
from porch.client.transport import ConnectionClosed
from porch.server.app import create_app
from porch.server.settings import Settings

ALICE = "+14155550101"
BOB = "+14155550102"


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "srv",
        limit_register_per_address="1000/1",
        limit_code_per_address="1000/1",
    )


def _code_reader(outbox: Path, phone: str) -> Any:
    async def read_code() -> str:
        lines = outbox.read_text(encoding="utf-8").splitlines()
        codes = [json.loads(line)["code"] for line in lines if json.loads(line)["phone"] == phone]
        return str(codes[-1])

    return read_code


async def _register(t: InProcessTransport, tmp_path: Path, phone: str, name: str) -> Client:
    profile = tmp_path / name
    await Client.register(
        server="http://testserver",
        phone=phone,
        read_code=_code_reader(tmp_path / "srv" / "sms-outbox.jsonl", phone),
        profile_dir=profile,
        transport=t,
    )
    return Client(profile, transport=t)


async def _next_message(client: Client, timeout: float = 10.0) -> Message:
    async def wait() -> Message:
        async for event in client.events():
            if isinstance(event, Message):
                return event
        raise AssertionError("the event stream ended")

    return await asyncio.wait_for(wait(), timeout)


async def test_two_clients_exchange_a_message(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    async with InProcessTransport(app) as t:
        alice = await _register(t, tmp_path, ALICE, "alice")
        bob = await _register(t, tmp_path, BOB, "bob")
        async with alice, bob:
            await alice.wait_connected(10)
            await bob.wait_connected(10)
            sent = await alice.send_text(BOB, "hello over no sockets", timeout=10)
            got = await _next_message(bob)
            assert got.text == "hello over no sockets"
            assert got.sender == alice.account_id
            assert got.id == sent.id

            # And back the other way, over the session bob now has.
            await bob.send_text(alice.account_id, "hi alice", timeout=10)
            back = await _next_message(alice)
            assert back.text == "hi alice"
            assert back.sender == bob.account_id


async def test_http_and_lifespan(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    async with InProcessTransport(app) as t:
        import httpx

        async with httpx.AsyncClient(
            transport=t.http_transport(), base_url="http://testserver"
        ) as http:
            # /readyz pings the store, which only the lifespan startup opens.
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready"}
    assert (tmp_path / "srv" / "porch.db").exists()


async def test_websocket_handshake_frames_and_close(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    async with InProcessTransport(app) as t:
        ws = await t.connect("ws://testserver/v1/ws")
        await ws.send(json.dumps({"type": "ping", "n": 7}))
        # Not authenticated yet: the gateway answers with an error frame.
        reply = json.loads(await ws.recv())
        assert reply["type"] == "error"
        assert reply["code"] == "auth_required"

        await ws.send(
            json.dumps(
                {
                    "type": "auth",
                    "account": "00000000-0000-0000-0000-000000000000",
                    "device": 1,
                    "password": "nope",
                }
            )
        )
        reply = json.loads(await ws.recv())
        assert reply["code"] == "auth_failed"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.code == 4401
        # A closed socket stays closed.
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        with pytest.raises(ConnectionClosed):
            await ws.send("{}")


async def test_client_close_and_transport_exit_end_open_sockets(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    async with InProcessTransport(app) as t:
        ws = await t.connect("ws://testserver/v1/ws")
        await ws.close()
        with pytest.raises(ConnectionClosed):
            await ws.send("{}")
        other = await t.connect("ws://testserver/v1/ws")
    # The transport shut down with `other` still open: its reader learns it is closed.
    with pytest.raises(ConnectionClosed):
        await other.recv()


async def test_connect_outside_the_context_is_an_error(tmp_path: Path) -> None:
    t = InProcessTransport(create_app(_settings(tmp_path)))
    with pytest.raises(RuntimeError):
        await t.connect("ws://testserver/v1/ws")
