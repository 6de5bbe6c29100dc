"""What an authenticated idle connection keeps on the server (issue 10, docs/performance.md
"Idle connections"): with heartbeats running, its WebSocket protocol holds no asyncio queue
or event and no handshake headers, and its session runs in three tasks. The server runs in
this process, with `porch serve`'s WebSocket and HTTP protocols (server/edge.py), so that the
test can look at those objects; `porch bench idle` measures the memory itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

from porch.bench.raw import RawConnection, provision
from porch.protocol import client_frames as cf
from porch.server import edge
from porch.server.app import create_app
from porch.server.lightsync import Flag, Inbox
from tests.integration.server import (
    ServerProcess,
    free_port,
    in_process_settings,
    serving_in_process,
)

CONNECTIONS = 12
HEARTBEAT = 0.2


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[uvicorn.Server, ServerProcess]]:
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    srv.data_dir.mkdir(parents=True)
    settings = in_process_settings(srv, {}, heartbeat_seconds=HEARTBEAT)
    config = edge.Config(
        create_app(settings),
        edge=edge.EdgeLimits.from_settings(settings),
        host="127.0.0.1",
        port=srv.port,
        http=edge.HTTP_PROTOCOL,
        ws=edge.WS_PROTOCOL,
        ws_max_size=settings.socket_max_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=HEARTBEAT,
        ws_ping_timeout=HEARTBEAT,
        log_level="warning",
        lifespan="on",
    )
    async with serving_in_process(None, srv.port, config) as server:
        yield server, srv


async def test_an_idle_session_keeps_little_and_answers_after_heartbeats(tmp_path: Path) -> None:
    async with serving(tmp_path) as (server, srv):
        devices = await provision(srv.url, srv.data_dir, CONNECTIONS, keys=False)
        ws_url = f"ws://127.0.0.1:{srv.port}/v1/ws"
        tasks_before = len(asyncio.all_tasks())
        conns = [await RawConnection.for_device(ws_url, d, ping_interval=None) for d in devices]
        try:
            # Several heartbeat rounds: a client that did not answer would be closed by now.
            await asyncio.sleep(HEARTBEAT * 6)
            assert not any(c.closed for c in conns)
            protocols = [
                p for p in server.server_state.connections if isinstance(p, edge.WebSocketProtocol)
            ]
            assert len(protocols) == CONNECTIONS
            for p in protocols:
                assert isinstance(p.queue, Inbox) and isinstance(p.writable, Flag)
                assert p.request is None and p.response is None
                assert p.scope["headers"] == []
                assert p.ping_timer is not None or p.pong_timer is not None  # heartbeats on
            # Per connection on the server: the session's own task (the ASGI call, which
            # also reads), its writer and its pump; the client's reader task is the fourth.
            added = len(asyncio.all_tasks()) - tasks_before
            assert added <= 4 * CONNECTIONS, added
            for c in conns:
                await c.send_frame(cf.ping(3))
                async with asyncio.timeout(5):
                    while (frame := await c.recv_frame())["type"] != "pong":
                        assert frame["type"] == "drained", frame  # nothing else was queued
                assert frame == {"type": "pong", "n": 3}
        finally:
            await asyncio.gather(*(c.close() for c in conns))
