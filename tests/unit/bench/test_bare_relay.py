"""The bare relay forwards a sender's frames to its paired receiver byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from porch.bench import bare_relay
from porch.protocol.close_codes import CloseCode


@pytest.fixture
async def relay_url() -> AsyncIterator[str]:
    async with serve(bare_relay.handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    bare_relay.connections.clear()


async def _hello(url: str, account: str, to: str | None = None) -> ClientConnection:
    ws = await connect(url, compression=None)
    hello: dict[str, object] = {"type": "auth", "account": account, "device": 3}
    if to is not None:
        hello["to"] = to
    await ws.send(orjson.dumps(hello).decode())
    ready = orjson.loads(await ws.recv())
    assert ready["type"] == "ready" and ready["forwarding"] is True and ready["device"] == 3
    return ws


async def test_frames_reach_the_peer_untouched(relay_url: str) -> None:
    receiver = await _hello(relay_url, "bob")
    sender = await _hello(relay_url, "alice", to="bob")
    # Not JSON, and not what Porch would send: the relay never looks.
    frames = ['{"type":"send","id":"m1"}', "not json at all \u00e9", "{" * 500]
    for frame in frames:
        await sender.send(frame)
    got = [await asyncio.wait_for(receiver.recv(), 5) for _ in frames]
    assert got == frames
    # The receiver's own frames go nowhere (no "to"): the sender gets nothing back.
    await receiver.send('{"type":"ack","ids":[1]}')
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sender.recv(), 0.2)
    await sender.close()
    await receiver.close()


async def test_a_frame_for_an_absent_peer_is_dropped_and_the_sender_stays(relay_url: str) -> None:
    sender = await _hello(relay_url, "carol", to="nobody")
    await sender.send("lost")
    receiver = await _hello(relay_url, "nobody")
    await sender.send("kept")
    assert await asyncio.wait_for(receiver.recv(), 5) == "kept"
    await sender.close()
    await receiver.close()


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ('{"type":"send"}', CloseCode.AUTH),
        ('{"type":"auth","account":""}', CloseCode.AUTH),
        ("[1, 2]", CloseCode.AUTH),
        ("not json", 1000),  # nothing to answer: the handler just ends
    ],
)
async def test_a_bad_handshake_is_refused(relay_url: str, first: str, code: int) -> None:
    ws = await connect(relay_url, compression=None)
    await ws.send(first)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == code
