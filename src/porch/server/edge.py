"""uvicorn protocol classes that bound what a connection can hold before the app sees it.

Measured on uvicorn's stock protocols (docs/operations.md, Pre-authentication limits): the
httptools parser keeps a request head whole however long it grows (8 unterminated 32 MiB
headers: +330 MiB), nothing times out a head that never ends, and the WebSocket parser buffers
a frame up to the socket cap (1 MiB) for a socket that has not authenticated (300 sockets with
512 KiB partial frames: +160 MiB). These subclasses add, per connection:

- a cap on the request head (PORCH_MAX_HEADER_BYTES), answered 431;
- a deadline for the request head (PORCH_HEADER_TIMEOUT_SECONDS), answered 408;
- a small WebSocket message cap until the app reports the connection authenticated
  (PORCH_PREAUTH_MAX_FRAME_BYTES), exceeded means close 1009 as soon as the frame header
  announces the length, before its payload is buffered.

`porch serve` runs them through `Config` (porch.cli.serve); they are the one place uvicorn is
subclassed, and tests/integration/test_preauth_limits.py holds them to their measurements.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.admission import AUTHENTICATED_EXTENSION
from porch.server.gateway.outbox import WRITE_FRAMES_EXTENSION
from porch.server.lightsync import Flag, Inbox
from porch.server.settings import Settings

HTTP_PROTOCOL = "porch.server.edge:HttpProtocol"
WS_PROTOCOL = "porch.server.edge:WebSocketProtocol"
PICOWS_PROTOCOL = "porch.server.gateway.picows_stack:PicowsProtocol"


def ws_protocol(stack: str) -> str:
    """uvicorn's `ws` setting for PORCH_WS_STACK: the upgraded socket goes to websockets'
    sans-I/O protocol (below) or to picows (gateway/picows_stack.py), on the same port."""
    return PICOWS_PROTOCOL if stack == "picows" else WS_PROTOCOL


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    preauth_frame_bytes: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            settings.max_header_bytes,
            settings.header_timeout_seconds,
            settings.preauth_max_frame_bytes,
        )


class Config(uvicorn.Config):
    """uvicorn's config with Porch's edge limits; picklable, so workers get them too."""

    def __init__(self, app: Any, *, edge: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.edge = edge


def _limits(config: uvicorn.Config) -> EdgeLimits:
    limits = getattr(config, "edge", None)
    return limits if isinstance(limits, EdgeLimits) else EdgeLimits()


def _response(status: int, reason: str, error: ProtocolError) -> bytes:
    body = dumps({"error": error.to_dict()})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HttpProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._edge = _limits(config)
        self._in_head = False
        self._head_bytes = 0
        self._completed = False  # a request ended within the chunk being parsed
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # from the connect: a socket that never sends is a slowloris too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._completed = False
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        if self._completed:
            # Pipelined: this chunk ended one request and began another; the new head's
            # share of it is unknown, so count it from the next chunk (at most one chunk,
            # 256 KiB, more than the cap: still bounded, never a false refusal).
            self._head_bytes = 0
        else:
            self._head_bytes += len(data)
        if self._head_bytes > self._edge.header_bytes:
            limit = self._edge.header_bytes
            error = ProtocolError(
                ErrorCode.REQUEST_TOO_LARGE,
                f"the request line and headers are limited to {limit} bytes",
                limit=limit,
            )
            self._refuse(_response(431, "Request Header Fields Too Large", error))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._arm()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._completed = True
        super().on_message_complete()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._edge.header_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a pipelined response is still being written: not yet
            return
        error = ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"send the request line and headers within {self._edge.header_timeout:g} s",
        )
        self._refuse(_response(408, "Request Timeout", error))

    def _refuse(self, response: bytes) -> None:
        self._in_head = False
        self._disarm()
        self.transport.write(response)
        self.transport.close()


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """websockets' sans-I/O protocol with a small message cap until authentication.

    websockets works out each frame's size limit from `max_message_size` when it starts
    reading the frame (websockets/protocol.py, Protocol.parse), and a frame whose header
    announces more is refused (1009) before its payload is read. So the cap is set before any
    data arrives, and raised when the app says the connection authenticated: before `ready`
    is sent, so a client that waits for `ready` (as docs/protocol.md asks) sends its first
    large frame under the full limit.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # The same calls on lighter objects: an asyncio.Queue and an asyncio.Event are five
        # deques, about 3.8 KB, for every connection however idle (lightsync.py).
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag(True)  # type: ignore[assignment]
        self._full_size = config.ws_max_size
        self.conn.max_message_size = min(_limits(config).preauth_frame_bytes, config.ws_max_size)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # None: the handshake was refused
            scope["extensions"][AUTHENTICATED_EXTENSION] = self._authenticated
            scope["extensions"][WRITE_FRAMES_EXTENSION] = self._write_frames

    def _authenticated(self) -> None:
        self.conn.max_message_size = self._full_size

    async def _write_frames(self, frames: list[bytes]) -> None:
        """Several text frames (UTF-8 already) in one socket write: what `websocket.send` does
        for one, without an ASGI message, a decode and an encode per frame (issue 10). The
        same flow control (`writable`) and the same answer to a peer that is gone."""
        await self.writable.wait()
        if self.disconnected or self.close_sent:
            raise ClientDisconnected
        try:
            for data in frames:
                self.conn.send_text(data)
        except InvalidState:
            raise ClientDisconnected from None
        self.transport.write(b"".join(self.conn.data_to_send()))

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The parsed request and the response, about 2.5 KB of headers, are not read
            # again once the handshake is answered, and a connection may last for hours.
            # websockets' parser keeps the request in its generator's frame for the
            # connection's life, so its headers are emptied rather than only dropped.
            self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A denial response (429/503, gateway/admission.py) ends the handshake as well;
            # uvicorn does not count it so, and would log "ASGI callable returned without
            # completing handshake." at ERROR for each refused socket: a flood of errors.
            self.handshake_complete = True
