"""Baseline `bare-relay` of `porch bench`: frames forwarded untouched, as by a chat relay with no
protocol (issue 10, "an honest baseline").

The only frame it reads is a connection's first, the handshake the load generator already sends
to Porch: ``{"type":"auth","account":ID, ...}``, plus ``"to": PEER`` on a sender's connection
(raw.RawConnection's ``to``). It is answered ``{"type":"ready", ..., "forwarding": true}``.
Every later frame from a sender is passed, as the bytes it arrived as, to the connection that
authenticated as PEER (looked up per frame: no parsing, no re-encoding, no acknowledgement);
frames from a connection without ``to`` are read and dropped unread. With no ``sent`` answers
the load generator frees a sender's window when the paired receiver gets the frame, and counts
deliveries there (scenarios/pairs_clients.py). Nothing is kept: a frame for a peer that is not
connected is lost. What it costs per message is the floor of any WebSocket relay in Python on
this stack (websockets on uvloop): the issue measured about 7.5-10 µs of CPU.

    python -m porch.bench.bare_relay --port 8765    # prints "relay listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import asyncio
import time

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from porch.bench import relay_server
from porch.protocol.close_codes import CloseCode

HANDSHAKE_TIMEOUT = 10.0
MAX_ID = 200  # the longest account id or peer id accepted in the handshake

connections: dict[str, ServerConnection] = {}


def _id(value: object) -> str | None:
    text = str(value) if isinstance(value, str | int) else None
    return text if text and len(text) <= MAX_ID else None


async def handler(ws: ServerConnection) -> None:
    try:
        hello = orjson.loads(await asyncio.wait_for(ws.recv(decode=False), HANDSHAKE_TIMEOUT))
    except (TimeoutError, ConnectionClosed, orjson.JSONDecodeError):
        return
    account = _id(hello.get("account")) if isinstance(hello, dict) else None
    if account is None or hello.get("type") != "auth":
        await ws.close(CloseCode.AUTH, "authentication failed")
        return
    peer = _id(hello.get("to"))
    device = hello.get("device")
    connections[account] = ws
    try:
        ready = {
            "type": "ready",
            "account": account,
            "device": device if isinstance(device, int) else 1,
            "server_time": time.time_ns() // 1_000_000,
            "one_time_keys": 100,
            "forwarding": True,
        }
        await ws.send(orjson.dumps(ready), text=True)
        if peer is None:
            while True:
                await ws.recv(decode=False)
        while True:
            data = await ws.recv(decode=False)
            target = connections.get(peer)
            if target is not None:
                # Not contextlib.suppress: a try costs nothing per frame in 3.11, a context
                # manager does, and this loop is what the baseline measures.
                try:  # noqa: SIM105
                    # Bytes as received, sent as a text frame again: no UTF-8 decode or encode.
                    await target.send(data, text=True)
                except ConnectionClosed:
                    pass
    except ConnectionClosed:
        pass
    finally:
        if connections.get(account) is ws:
            del connections[account]


def cli(argv: list[str] | None = None) -> None:
    relay_server.cli(handler, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    cli()
