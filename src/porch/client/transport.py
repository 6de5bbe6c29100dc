"""How the SDK reaches a server: passed in, so tests and embedders can swap it.

A Transport gives an httpx transport for the HTTP API and opens WebSocket connections.
NetworkTransport is the real one; an in-process one can drive an ASGI app directly.
"""

from __future__ import annotations

from typing import Protocol

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from porch.protocol.frames import MAX_SERVER_FRAME_BYTES

# The socket limit follows from the server's promise (docs/protocol.md, "Frame size limits"),
# with a margin so that a server a little over it (a later version) costs no reconnect loop.
MAX_RECEIVE_BYTES = MAX_SERVER_FRAME_BYTES + (64 << 10)


class ConnectionClosed(Exception):
    """The WebSocket is gone (either side closed it, or the network failed)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class WebSocketLike(Protocol):
    async def send(self, data: str) -> None: ...
    async def recv(self) -> str | bytes: ...
    async def close(self) -> None: ...


class Transport(Protocol):
    def http_transport(self) -> httpx.AsyncBaseTransport | None: ...
    async def connect(self, url: str) -> WebSocketLike: ...


class _NetworkSocket:
    def __init__(self, conn: ClientConnection) -> None:
        self._conn = conn

    async def send(self, data: str) -> None:
        try:
            await self._conn.send(data)
        except websockets.ConnectionClosed as exc:
            raise ConnectionClosed(exc.rcvd.code if exc.rcvd else None) from None

    async def recv(self) -> str | bytes:
        try:
            return await self._conn.recv()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise ConnectionClosed(
                rcvd.code if rcvd else None, rcvd.reason if rcvd else ""
            ) from None

    async def close(self) -> None:
        await self._conn.close()


class NetworkTransport:
    def __init__(
        self, max_frame_bytes: int = MAX_RECEIVE_BYTES, open_timeout: float = 10.0
    ) -> None:
        self._max_size = max_frame_bytes
        self._open_timeout = open_timeout

    def http_transport(self) -> httpx.AsyncBaseTransport | None:
        return None

    async def connect(self, url: str) -> WebSocketLike:
        try:
            conn = await websockets.connect(
                url,
                max_size=self._max_size,
                open_timeout=self._open_timeout,
                ping_interval=20,
                ping_timeout=20,
                compression=None,
            )
        except websockets.InvalidStatus as exc:
            raise ConnectionClosed(None, refused_reason(exc)) from None
        except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
            raise ConnectionClosed(None, f"cannot connect: {exc}") from None
        return _NetworkSocket(conn)


def refused_reason(exc: websockets.InvalidStatus) -> str:
    """Why the server refused the WebSocket handshake, in words: 429 and 503 are a busy
    server (docs/protocol.md, "Connecting": too many handshakes from one address, or too
    many connections in all), not a server that is down."""
    status = exc.response.status_code
    after = exc.response.headers.get("Retry-After", "")
    wait = f"; it asks to try again in {after} s" if after.isdigit() else ""
    if status == 429:
        return f"the server is busy: too many connections from this address (HTTP 429){wait}"
    if status == 503:
        return f"the server is busy: it has too many connections (HTTP 503){wait}"
    return f"the server refused the connection (HTTP {status})"
