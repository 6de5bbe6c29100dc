"""Baseline `protocol-relay` of `porch bench`: Porch's wire protocol, no durability.

A WebSocket relay on uvloop that speaks the same frames as Porch but checks and keeps nothing:
a client sends {"type":"auth","account":ID,...} and is answered "ready"; each "send" is parsed
(JSON) and forwarded as an "envelope" to the recipient's connection (one per account, the last
one wins) and answered "sent"; acks are ignored. It is what the network, JSON, the websockets
library and the protocol's two frames per send cost (about 23 µs of CPU per message, issue 10),
so Porch's figures can be read against "same protocol, no durability". For the cost of moving
frames alone, see the `bare-relay` (:mod:`porch.bench.bare_relay`). Its old target name
`relay` is still accepted.

    python -m porch.bench.protocol_relay --port 8765    # prints "relay listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from porch.bench import relay_server
from porch.protocol import server_frames as sf
from porch.protocol.close_codes import CloseCode

connections: dict[str, ServerConnection] = {}
envelope_ids = itertools.count(1)


def dumps(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


async def handler(ws: ServerConnection) -> None:
    try:
        auth = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    except (TimeoutError, ConnectionClosed, orjson.JSONDecodeError):
        return
    if not isinstance(auth, dict) or auth.get("type") != "auth":
        await ws.close(CloseCode.AUTH, "authentication failed")
        return
    account = str(auth.get("account"))
    device = int(auth.get("device") or 1)
    connections[account] = ws
    try:
        now = time.time_ns() // 1_000_000
        # Hand-written, not sf.ready: that one validates, and the relay checks nothing.
        await ws.send(
            dumps(
                {
                    "type": "ready",
                    "account": account,
                    "device": device,
                    "server_time": now,
                    "one_time_keys": 100,
                }
            )
        )
        async for data in ws:
            frame = orjson.loads(data)
            kind = frame.get("type")
            if kind == "send":
                await forward(account, device, frame, ws)
            elif kind == "ping":
                await ws.send(dumps(sf.pong(frame.get("n"))))
            # "ack" and anything else: ignored
    except ConnectionClosed:
        pass
    finally:
        if connections.get(account) is ws:
            del connections[account]


async def forward(sender: str, device: int, frame: dict[str, Any], ws: ServerConnection) -> None:
    ts = time.time_ns() // 1_000_000
    # The bench sends to one account, one device (payload.send_frame).
    dest = frame["destinations"][0]
    peer = connections.get(str(dest.get("account")))
    if peer is None:
        await ws.send(
            dumps(
                {
                    "type": "error",
                    "code": "unknown_recipient",
                    "message": "recipient not connected",
                    "ref": frame.get("id"),
                }
            )
        )
        return
    for m in dest["devices"]:
        envelope = sf.envelope(next(envelope_ids), sender, device, ts, m["kind"], m["body"])
        # No persistence: a message to a peer that just left is lost, as in any bare relay.
        with contextlib.suppress(ConnectionClosed):
            await peer.send(dumps(envelope))
    await ws.send(dumps(sf.sent(frame["id"], ts)))


def cli(argv: list[str] | None = None) -> None:
    relay_server.cli(handler, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    cli()
