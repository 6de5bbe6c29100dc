"""The gateway's WebSocket on picows, behind uvicorn's HTTP parser: one port for both.

picows (a Cython WebSocket library) parses and frames in C; websockets' sans-I/O protocol
does it in Python, with an ASGI message per frame each way (docs/performance.md, "WebSocket
stack"). picows serves only GET requests without a body, so it cannot be the HTTP server;
uvicorn can hand an upgraded socket to any protocol (its `ws` setting), and this module is
that protocol: uvicorn's HTTP protocol (server/edge.py, with its header size and time limits)
reads the upgrade request, then gives the socket and the request's bytes to PicowsProtocol,
which answers the handshake and carries the session. HTTP keeps FastAPI; the port is shared.

The session is the same gateway/connection.py as on the ASGI path: PicowsSocket offers the
members it uses (gateway/socket.py). Kept the same as on the other stack (server/edge.py,
uvicorn's websockets_sansio_impl): the admission of unauthenticated sockets, answered 429/503
before the handshake; the client address from trusted proxies; the small frame limit until
`ready` (gateway/frame_heads.py), the socket cap after (1009); heartbeats (a ping every
PORCH_HEARTBEAT_SECONDS, 1011 when one goes unanswered as long); back-pressure both ways
(reading pauses while frames wait for the session, writers wait while the transport is above
its high-water mark); 1012 to every session when the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import uvicorn
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]
from starlette.datastructures import Address
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

from porch.protocol.close_codes import CloseCode
from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.admission import AUTHENTICATED_EXTENSION, RETRY_AFTER, Ticket
from porch.server.gateway.endpoint import GATEWAY_PATH, Sessions, sessions_of
from porch.server.gateway.frame_heads import HeadGuard
from porch.server.gateway.outbox import WRITE_FRAMES_EXTENSION
from porch.server.lightsync import Flag
from porch.server.proxies import resolve

CLOSE_TIMEOUT = 10.0  # as uvicorn's: how long a peer may take to answer our close frame
INBOX_FRAMES = 32  # frames waiting for the session before reading pauses
READ_BUFFER = 2048  # picows's smallest; it doubles as frames need (an idle socket's memory)
_GATEWAY = GATEWAY_PATH.encode()
_RECEIVED = "websocket.receive"
_DISCONNECT: Message = {"type": "websocket.disconnect", "code": 1006}
_TEXT, _BINARY, _CONT = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_PONG, _CLOSE = WSMsgType.PONG, WSMsgType.CLOSE


class _QuietLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """picows logs every connection and disconnection at INFO (DEBUG here, as uvicorn's are)
    and a peer's malformed or oversize frame at ERROR: the client's fault, not the server's,
    and it gets its close code, so INFO. Exceptions stay errors. A LoggerAdapter also stops
    picows making a Logger per connection (WSProtocol.connection_made)."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR and not kwargs.get("exc_info"):
            level = logging.INFO
        elif level == logging.INFO:
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)


_LOG = _QuietLog(logging.getLogger("porch.gateway.picows"), {})


def _frame_head(size: int) -> bytes:
    """A final unmasked text frame's header (RFC 6455 section 5.2; servers do not mask)."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")


class PicowsSocket(WSListener):
    """picows's listener for one connection, and the session's socket (gateway/socket.py)."""

    __slots__ = (
        "_close_sent",
        "_full",
        "_gone",
        "_heartbeat",
        "_inbox",
        "_limit",
        "_parts",
        "_paused",
        "_ping",
        "_protocol",
        "_ready",
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
                AUTHENTICATED_EXTENSION: self._authenticated,
            },
        }
        self._heartbeat = heartbeat
        self._limit, self._full = limits  # frame limit now (before `ready`), and after
        self._transport: WSTransport | None = None
        self._inbox: list[Message] = []
        self._ready = Flag()  # the inbox has something, or the peer is gone
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
            await self._ready.wait()
        message = inbox.pop(0)
        if self._paused and not inbox and self._transport is not None:
            self._paused = False
            self._transport.underlying_transport.resume_reading()
        return message

    async def send_text(self, data: str) -> None:
        await self._writable.wait()
        if self._gone or self._close_sent or self._transport is None:
            raise WebSocketDisconnect(1006)
        self._transport.send(_TEXT, data)

    async def _write_frames(self, frames: list[bytes]) -> None:
        """Several text frames in one socket write (gateway/outbox.py), framed here: picows
        writes each frame it sends on its own."""
        await self._writable.wait()
        if self._gone or self._close_sent or self._transport is None:
            raise ConnectionResetError("the peer is gone")
        parts: list[bytes] = []
        for data in frames:
            parts.append(_frame_head(len(data)))
            parts.append(data)
        self._transport.underlying_transport.write(b"".join(parts))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if self._gone or self._close_sent or self._transport is None:
            return
        self._close_sent = True
        self._cancel_timer()
        self._transport.send_close(WSCloseCode(code), (reason or "").encode())
        if self._paused:  # read on, for the peer's reply
            self._paused = False
            self._transport.underlying_transport.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(
            CLOSE_TIMEOUT, self._transport.disconnect
        )

    @property
    def heartbeats_on(self) -> bool:
        """A ping or a pong deadline is scheduled (tests/integration/test_idle_connection.py)."""
        return self._timer is not None

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


class PicowsProtocol(WSProtocol):  # type: ignore[misc]
    """What uvicorn's HTTP protocol hands an upgrade request to (uvicorn's `ws` setting):
    picows's protocol, fed the request uvicorn read, with Porch's admission in front."""

    __slots__ = ("_config", "_server", "_sessions", "_socket", "_ticket", "_view", "guard")

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        sessions = sessions_of(config.loaded_app)
        super().__init__(
            None,  # host and port: the client side's
            None,  # path: the client side's
            False,  # the server side
            self._listen,
            _LOG,
            True,  # disconnect when the listener raises
            None,  # handshake timeout: uvicorn timed the request head already (edge.py)
            False,  # picows's auto-ping runs a task per connection; timers instead (above)
            1.0,
            1.0,
            WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # answer pings
            config.ws_max_size,  # the socket cap; HeadGuard holds the smaller one before `ready`
            None,
            READ_BUFFER,
        )
        self._config = config
        self._server = server_state
        self._sessions: Sessions = sessions
        self._socket: PicowsSocket | None = None
        self._ticket: Ticket | None = None
        self._view: memoryview | None = None
        self.guard: HeadGuard | None = None

    def data_received(self, data: bytes) -> None:
        """The upgrade request, which uvicorn's HTTP protocol read and passes on; picows is a
        buffered protocol, so it goes in through its buffer."""
        self._server.connections.add(self)
        while data:
            view = super().get_buffer(-1)
            step = min(len(view), len(data))
            view[:step] = data[:step]
            super().buffer_updated(step)
            data = data[step:]
        if self._socket is not None:  # accepted: frames are guarded until `ready`
            self.guard = HeadGuard(min(self._sessions.preauth_frame_bytes, self._full()))

    def get_buffer(self, size_hint: int) -> memoryview:
        view: memoryview = super().get_buffer(size_hint)
        if self.guard is not None:
            self._view = view
        return view

    def buffer_updated(self, nbytes: int) -> None:
        guard = self.guard
        if guard is not None and self._view is not None:
            fits = guard.feed(self._view[:nbytes])
            self._view = None
            if not fits and self._socket is not None:
                # Refused at its header, before picows buffers the payload (frame_heads.py).
                self.guard = None
                self._socket._fail(CloseCode.MESSAGE_TOO_BIG, "frame too large before ready")
                return
        super().buffer_updated(nbytes)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._server.connections.discard(self)
        if self._ticket is not None:  # a handshake that failed after admission, or the end
            self._ticket.release()

    @property
    def socket(self) -> PicowsSocket | None:
        """The session's socket, once the handshake was accepted."""
        return self._socket

    def shutdown(self) -> None:
        if self._socket is not None:
            self._socket.shutdown()
        else:
            self.transport.disconnect()

    def _full(self) -> int:
        return int(self._config.ws_max_size)

    def _listen(self, request: WSUpgradeRequest) -> PicowsSocket | WSUpgradeResponseWithListener:
        """picows's listener factory: the route, the client address, admission."""
        if request.path.split(b"?", 1)[0] != _GATEWAY:
            return _refusal(404, {"error": {"code": "not_found", "message": "not found"}})
        tcp = self.transport.underlying_transport
        peer = tcp.get_extra_info("peername") or ("", 0)
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
        ]
        sessions = self._sessions
        scope = resolve(
            {"type": "websocket", "client": (peer[0], peer[1]), "headers": headers},
            sessions.proxies,
        )
        host, port = scope["client"]
        try:
            self._ticket = sessions.admission.admit(host)
        except ProtocolError as exc:
            sessions.metrics.errors.labels(str(exc.code)).inc()
            status = 503 if exc.code == ErrorCode.UNAVAILABLE else 429
            retry = str(exc.details.get("retry_after", RETRY_AFTER))
            return _refusal(status, {"error": exc.to_dict()}, retry)
        self._socket = PicowsSocket(
            self,
            Address(host, port),
            sessions.heartbeat,
            (min(sessions.preauth_frame_bytes, self._full()), self._full()),
        )
        return self._socket

    def start_session(self, socket: PicowsSocket) -> None:
        """The handshake is answered: the session runs in a task of its own, as an ASGI
        server's per-connection task does, listed in uvicorn's tasks so that its shutdown
        waits for it (and cancels it past the grace period)."""
        task = asyncio.get_running_loop().create_task(self._run(socket))
        tasks = self._server.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, socket: PicowsSocket) -> None:
        assert self._ticket is not None
        try:
            await self._sessions.run(socket, self._ticket)
        finally:
            self._ticket.release()
            socket.ended()


def _refusal(
    status: int, body: dict[str, Any], retry: str | None = None
) -> WSUpgradeResponseWithListener:
    headers = {"content-type": "application/json"}
    if retry is not None:
        headers["retry-after"] = retry
    response = WSUpgradeResponse.create_error_response(status, dumps(body), headers)
    return WSUpgradeResponseWithListener(response, None)
