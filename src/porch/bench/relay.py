"""Baseline for `porch bench`: a bare WebSocket relay on uvloop, same frames as Porch.

No authentication check, no persistence, no validation beyond what forwarding needs: a client
sends {"type":"auth","account":ID,...} and is answered "ready"; each "send" is forwarded as an
"envelope" to the recipient's connection (one per account, the last one wins) and answered
"sent"; acks are ignored. It is what the network, JSON and the websockets library cost, so
Porch's figures can be read against it.

    python -m porch.bench.relay --port 8765    # prints "relay listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import resource
import signal
import time
from typing import Any

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

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


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, host, port, compression=None, max_size=1 << 20) as server:
        bound = next(iter(server.sockets)).getsockname()
        print(f"relay listening on {bound[0]}:{bound[1]}", flush=True)
        await stop


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    _raise_nofile()
    uvloop.run(main(args.host, args.port))


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    cli()
