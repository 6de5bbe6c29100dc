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

import pytest
import uvicorn

from porch.bench.raw import RawConnection, provision
from porch.protocol import client_frames as cf
from porch.server import edge
from porch.server.app import create_app
from porch.server.gateway.picows_stack import PicowsProtocol
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
async def serving(
    tmp_path: Path, stack: str
) -> AsyncIterator[tuple[uvicorn.Server, ServerProcess]]:
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    srv.data_dir.mkdir(parents=True)
    settings = in_process_settings(srv, {}, heartbeat_seconds=HEARTBEAT)
    config = edge.Config(
        create_app(settings),
        edge=edge.EdgeLimits.from_settings(settings),
        host="127.0.0.1",
        port=srv.port,
        http=edge.HTTP_PROTOCOL,
        ws=edge.ws_protocol(stack),
        ws_max_size=settings.socket_max_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=HEARTBEAT,
        ws_ping_timeout=HEARTBEAT,
        log_level="warning",
        lifespan="on",
    )
    async with serving_in_process(None, srv.port, config) as server:
        yield server, srv


@pytest.mark.parametrize("stack", ["websockets", "picows"])
async def test_an_idle_session_keeps_little_and_answers_after_heartbeats(
    tmp_path: Path, stack: str
) -> None:
    async with serving(tmp_path, stack) as (server, srv):
        devices = await provision(srv.url, srv.data_dir, CONNECTIONS, keys=False)
        ws_url = f"ws://127.0.0.1:{srv.port}/v1/ws"
        tasks_before = len(asyncio.all_tasks())
        conns = [await RawConnection.for_device(ws_url, d, ping_interval=None) for d in devices]
        try:
            # Several heartbeat rounds: a client that did not answer would be closed by now.
            await asyncio.sleep(HEARTBEAT * 6)
            closes = [(c._ws.close_code, c._ws.close_reason) for c in conns if c.closed]
            assert not closes, closes
            if stack == "websockets":
                protocols = [
                    p
                    for p in server.server_state.connections
                    if isinstance(p, edge.WebSocketProtocol)
                ]
                assert len(protocols) == CONNECTIONS
                for p in protocols:
                    assert isinstance(p.queue, Inbox) and isinstance(p.writable, Flag)
                    assert p.request is None and p.response is None
                    assert p.scope["headers"] == []
                    assert p.ping_timer is not None or p.pong_timer is not None  # heartbeats
            else:
                sockets = [
                    p.socket
                    for p in server.server_state.connections
                    if isinstance(p, PicowsProtocol)
                ]
                assert len(sockets) == CONNECTIONS
                for s in sockets:
                    assert s is not None and s.scope["headers"] == []
                    assert s.heartbeats_on  # timers, not picows's ping task
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


@pytest.mark.parametrize("stack", ["websockets", "picows"])
async def test_an_unanswered_heartbeat_closes_1011(tmp_path: Path, stack: str) -> None:
    """A peer that stops answering pings is closed after one heartbeat (docs/protocol.md,
    "Heartbeats"), the same on both WebSocket stacks."""
    async with serving(tmp_path, stack) as (_, srv):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            b"GET /v1/ws HTTP/1.1\r\nHost: porch\r\nUpgrade: websocket\r\nConnection: Upgrade"
            b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
            b"\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        data = b""
        async with asyncio.timeout(HEARTBEAT * 15):
            while b"\x88" not in data:  # never answered: no pong goes back
                chunk = await reader.read(4096)
                assert chunk, f"closed without a close frame after {data!r}"
                data += chunk
        assert data.startswith(b"\x89")  # a ping first (RFC 6455: opcode 0x9)
        close = data[data.index(b"\x88") :]
        assert close[2:4] == (1011).to_bytes(2, "big")
        writer.close()
