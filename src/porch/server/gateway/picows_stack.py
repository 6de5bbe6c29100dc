"""The gateway's WebSocket on picows, behind uvicorn's HTTP parser: one port for both.

picows (a Cython WebSocket library) parses and frames in C; websockets' sans-I/O protocol
does it in Python, with an ASGI message per frame each way (docs/performance.md, "WebSocket
stack"). picows serves only GET requests without a body, so it cannot be the HTTP server;
uvicorn can hand an upgraded socket to any protocol (its `ws` setting), and this module is
that protocol: uvicorn's HTTP protocol (server/edge.py, with its header size and time limits)
reads the upgrade request, then gives the socket and the request's bytes to PicowsProtocol,
which answers the handshake and carries the session. HTTP keeps FastAPI; the port is shared.

The session is the same gateway/connection.py as on the ASGI path: PicowsSocket
(gateway/picows_socket.py) offers the members it uses (gateway/socket.py). Kept the same as
on the other stack (server/edge.py, uvicorn's websockets_sansio_impl): the admission of
unauthenticated sockets, answered 429/503 before the handshake; the client address from
trusted proxies; the small frame limit until `ready` (gateway/frame_heads.py), the socket
cap after (1009); heartbeats (a ping every PORCH_HEARTBEAT_SECONDS, 1011 when one goes
unanswered as long); back-pressure both ways (reading pauses while frames wait for the
session, writers wait while the transport is above its high-water mark); 1012 to every
session when the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from picows import (
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]
from starlette.datastructures import Address

from porch.protocol.close_codes import CloseCode
from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.admission import RETRY_AFTER, Ticket
from porch.server.gateway.endpoint import GATEWAY_PATH, Sessions, sessions_of
from porch.server.gateway.frame_heads import HeadGuard
from porch.server.gateway.picows_socket import PicowsSocket
from porch.server.proxies import resolve

READ_BUFFER = 2048  # picows's smallest; it doubles as frames need (an idle socket's memory)
_GATEWAY = GATEWAY_PATH.encode()


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
        # Only X-Forwarded-* are read (proxies.resolve); a stray non-Latin-1 byte in another
        # header must not fail the handshake.
        headers = [
            (k.lower().encode("latin-1", "replace"), v.encode("latin-1", "replace"))
            for k, v in request.headers.items()
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
        except Exception:  # what uvicorn logs for an ASGI call that raised
            _LOG.logger.exception("gateway session failed")
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
