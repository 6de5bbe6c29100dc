"""What both baseline relays share: serving one handler on uvloop until SIGTERM, and their CLI.

Each relay runs as its own process (targets.py starts it with ``python -m``), on one event loop
and one thread, like one Porch node's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
from collections.abc import Awaitable, Callable

import uvloop
from websockets.asyncio.server import ServerConnection, serve

Handler = Callable[[ServerConnection], Awaitable[None]]
MAX_FRAME = 1 << 20  # the relays accept what a Porch client may send (docs/protocol.md)


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def serve_until_stopped(handler: Handler, host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, host, port, compression=None, max_size=MAX_FRAME) as server:
        bound = next(iter(server.sockets)).getsockname()
        print(f"relay listening on {bound[0]}:{bound[1]}", flush=True)
        await stop


def cli(handler: Handler, description: str, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    raise_nofile()
    uvloop.run(serve_until_stopped(handler, args.host, args.port))
