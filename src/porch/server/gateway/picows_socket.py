"""The picows stack's per-connection object: picows's listener and the session's socket.

See gateway/picows_stack.py for how a socket gets here. PicowsSocket takes picows's frame
callbacks on one side and offers the session (gateway/connection.py) the members of
gateway/socket.py on the other: an inbox of received messages with back-pressure on reading,
text frames out (several in one write), the close handshake, and heartbeats as timers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport
from starlette.datastructures import Address
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

from porch.failures import log_failure
from porch.protocol.close_codes import CloseCode
from porch.server.gateway.acks_now import ON_FRAME_EXTENSION, OnFrame
from porch.server.gateway.admission import AUTHENTICATED_EXTENSION
from porch.server.gateway.outbox import WRITE_FRAMES_EXTENSION, WRITE_FRAMES_NOW_EXTENSION
from porch.server.lightsync import Flag

if TYPE_CHECKING:  # picows_stack.py imports this module
    from porch.server.gateway.picows_stack import PicowsProtocol

log = logging.getLogger("porch.gateway")

CLOSE_TIMEOUT = 10.0  # as uvicorn's: how long a peer may take to answer our close frame
INBOX_FRAMES = 32  # frames waiting for the session before reading pauses
_RECEIVED = "websocket.receive"
_DISCONNECT: Message = {"type": "websocket.disconnect", "code": 1006}
_TEXT, _BINARY, _CONT = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_PONG, _CLOSE = WSMsgType.PONG, WSMsgType.CLOSE


def _frame_head(size: int) -> bytes:
    """A final unmasked text frame's header (RFC 6455 section 5.2; servers do not mask)."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")


def _framed(frames: list[bytes]) -> bytes:
    """Text frames, headed, in one buffer for one write."""
    if len(frames) == 1:
        data = frames[0]
        return _frame_head(len(data)) + data
    parts: list[bytes] = []
    for data in frames:
        parts.append(_frame_head(len(data)))
        parts.append(data)
    return b"".join(parts)


class PicowsSocket(WSListener):
    """picows's listener for one connection, and the session's socket (gateway/socket.py)."""

    __slots__ = (
        "_close_sent",
        "_full",
        "_gone",
        "_heartbeat",
        "_inbox",
        "_limit",
        "_on_frame",
        "_parts",
        "_paused",
        "_ping",
        "_protocol",
        "_ready",
        "_receiving",
        "_timer",
        "_transport",
        "_writable",
        "client",
        "scope",
    )

    def __init__(
        self, protocol: PicowsProtocol, client: Address, heartbeat: float, limits: tuple[int, int]
    ) -> None:
        self._protocol = protocol
        self.client = client
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "headers": [],  # read once, for the client address (below), and not kept
            "extensions": {
                WRITE_FRAMES_EXTENSION: self._write_frames,
                WRITE_FRAMES_NOW_EXTENSION: self._write_frames_now,
                AUTHENTICATED_EXTENSION: self._authenticated,
                ON_FRAME_EXTENSION: self._set_on_frame,
            },
        }
        self._heartbeat = heartbeat
        self._limit, self._full = limits  # frame limit now (before `ready`), and after
        self._transport: WSTransport | None = None
        self._inbox: list[Message] = []
        self._ready = Flag()  # the inbox has something, or the peer is gone
        # The session's handler of frames as they arrive (gateway/acks_now.py), called only
        # while its reader is parked in receive() with the inbox empty, so order is kept.
        self._on_frame: OnFrame | None = None
        self._receiving = False
        self._writable = Flag(True)
        self._parts: list[bytes] | None = None  # a fragmented message being put together
        self._paused = False
        self._gone = False
        self._close_sent = False
        self._timer: asyncio.TimerHandle | None = None  # the next ping, or the pong deadline
        self._ping: bytes | None = None  # the payload of the ping awaiting its pong

    # picows's side ---------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._transport = transport
        # picows keeps the parsed request and response for the connection's life; their
        # headers are not read again (the client address is resolved): emptied, as edge.py
        # empties websockets' (an idle connection's memory, docs/performance.md).
        for head in (transport.request, transport.response):
            if head is not None:
                head.headers.clear()
        if self._heartbeat > 0:
            self._schedule_ping()
        self._protocol.start_session(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _TEXT or kind is _BINARY:
            if frame.fin:
                self._deliver(frame.get_payload_as_bytes())
            else:
                self._parts = [frame.get_payload_as_bytes()]
        elif kind is _CONT:
            if self._parts is None:
                return self._fail(
                    WSCloseCode.PROTOCOL_ERROR.value, "continuation without a message"
                )
            self._parts.append(frame.get_payload_as_bytes())
            if sum(map(len, self._parts)) > self._limit:
                return self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
            if frame.fin:
                data, self._parts = b"".join(self._parts), None
                self._deliver(data)
        elif kind is _PONG:
            if self._ping is not None and frame.get_payload_as_bytes() == self._ping:
                self._ping = None
                self._cancel_timer()  # the pong deadline
                self._schedule_ping()
        elif kind is _CLOSE:
            if not self._close_sent:  # the peer began it: echo its code (RFC 6455 5.5.1)
                self._close_sent = True
                transport.send(_CLOSE, frame.get_payload_as_bytes()[:2])
            transport.disconnect()
        # Pings are answered by picows (enable_auto_pong).

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._gone = True
        self._cancel_timer()
        self._ready.set()  # the reader sees the end
        self._writable.set()  # a writer waiting for room sees it too

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def _deliver(self, data: bytes) -> None:
        if self._close_sent:
            return  # past our close: discarded, as uvicorn does, until the peer's reply
        if len(data) > self._limit:  # one frame over the limit: picows refused it (1009)
            return self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
        on_frame = self._on_frame
        if on_frame is not None and self._receiving and not self._inbox:
            try:
                if on_frame(data):
                    return
            except Exception as exc:  # the reader gets the frame, as without a handler
                log_failure(log, "taking a frame in the socket's callback failed", exc=exc)
        self._inbox.append({"type": _RECEIVED, "bytes": data})
        self._ready.set()
        if len(self._inbox) >= INBOX_FRAMES and not self._paused and self._transport:
            self._paused = True
            self._transport.underlying_transport.pause_reading()

    def _fail(self, code: int, reason: str) -> None:
        assert self._transport is not None
        self._close_sent = True
        self._transport.send_close(WSCloseCode(code), reason.encode())
        self._transport.disconnect()

    # Heartbeats: timers, not a task per connection (an idle socket's memory) -------------------

    def _schedule_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._heartbeat, self._send_ping)

    def _send_ping(self) -> None:
        self._timer = None
        if self._gone or self._close_sent or self._transport is None:
            return
        self._ping = os.urandom(4)  # tells this ping's pong from a stale or unsolicited one
        self._transport.send_ping(self._ping)
        self._timer = asyncio.get_running_loop().call_later(self._heartbeat, self._no_pong)

    def _no_pong(self) -> None:
        self._timer = None
        if not (self._gone or self._close_sent):
            self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # The session's side (gateway/socket.py) ---------------------------------------------------

    async def accept(self) -> None:
        """Nothing left to do: picows answered the handshake before the session began."""

    async def receive(self) -> Message:
        inbox = self._inbox
        while not inbox:
            if self._gone:
                return _DISCONNECT
            self._ready.clear()
            self._receiving = True
            try:
                await self._ready.wait()
            finally:
                self._receiving = False
        message = inbox.pop(0)
        if self._paused and not inbox and self._transport is not None:
            self._paused = False
            self._transport.underlying_transport.resume_reading()
        return message

    async def send_text(self, data: str) -> None:
        await self._writable.wait()
        transport = self._open_transport()
        if transport is None:
            raise WebSocketDisconnect(1006)
        transport.send(_TEXT, data)

    async def _write_frames(self, frames: list[bytes]) -> None:
        """Several text frames in one socket write (gateway/outbox.py), framed here: picows
        writes each frame it sends on its own."""
        await self._writable.wait()
        transport = self._open_transport()
        if transport is None:
            raise ConnectionResetError("the peer is gone")
        transport.underlying_transport.write(_framed(frames))

    def _write_frames_now(self, frames: list[bytes]) -> bool:
        """_write_frames without waiting (gateway/outbox.py, `flush`): False, having written
        nothing, while the transport is above its high-water mark or the socket is closing."""
        if not self._writable.is_set():
            return False
        transport = self._open_transport()
        if transport is None:
            return False  # the writer task meets the end and ends the session
        try:
            transport.underlying_transport.write(_framed(frames))
        except (OSError, RuntimeError):  # closed under us: the same, through the writer
            return False
        return True

    def _open_transport(self) -> WSTransport | None:
        """The transport while frames may still go out; None once gone or once a close frame
        is sent, by us or by picows itself (its parser's 1002 on a bad frame, e.g. a
        non-minimal length), after which RFC 6455 5.5.1 allows no data frame. picows drops
        its own sends then; _write_frames writes to the socket directly, so it must ask."""
        transport = self._transport
        if self._gone or self._close_sent or transport is None or transport.is_close_frame_sent:
            return None
        return transport

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        transport = self._open_transport()
        if transport is None:
            return
        self._close_sent = True
        self._cancel_timer()
        transport.send_close(WSCloseCode(code), (reason or "").encode())
        if self._paused:  # read on, for the peer's reply
            self._paused = False
            transport.underlying_transport.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.disconnect)

    @property
    def heartbeats_on(self) -> bool:
        """A ping or a pong deadline is scheduled (tests/integration/test_idle_connection.py)."""
        return self._timer is not None

    def _set_on_frame(self, handler: OnFrame | None) -> None:
        self._on_frame = handler

    def _authenticated(self) -> None:
        self._limit = self._full
        self._protocol.guard = None

    def ended(self) -> None:
        """The session is over: a socket it did not close is closed now."""
        if not self._gone and not self._close_sent and self._transport is not None:
            self._transport.disconnect()

    def shutdown(self) -> None:
        """The server is stopping: 1012, as uvicorn sends."""
        if not self._gone and not self._close_sent and self._transport is not None:
            self._fail(CloseCode.SERVICE_RESTART, "")
