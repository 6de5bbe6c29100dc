"""A Transport that drives an ASGI app in the same event loop, without sockets.

    app = create_app(Settings(data_dir=...))
    async with InProcessTransport(app) as transport:
        client = Client(profile_dir, transport=transport)

HTTP goes through httpx.ASGITransport. Each WebSocket is the app's websocket endpoint run as a
task in a task group owned by the transport, with two queues standing in for the network. The
transport also runs the app's lifespan (startup on enter, shutdown on exit), which
httpx.ASGITransport does not, so the server's store is open while the transport is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from porch.client.transport import ConnectionClosed, WebSocketLike

log = logging.getLogger("porch.client.inprocess")

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ASGI_VERSION = {"version": "3.0"}
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006
CLOSE_INTERNAL = 1011
SHUTDOWN_GRACE = 2.0


def websocket_scope(url: str) -> dict[str, Any]:
    """The ASGI scope of a WebSocket connection to url (ws://testserver/v1/ws by default)."""
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    host = parts.hostname or "testserver"
    port = parts.port or (443 if secure else 80)
    return {
        "type": "websocket",
        "path": parts.path or "/v1/ws",
        "raw_path": (parts.path or "/v1/ws").encode("ascii"),
        "headers": [],
        "query_string": parts.query.encode("ascii"),
        "scheme": "wss" if secure else "ws",
        "server": (host, port),
        "client": ("127.0.0.1", 1234),
        "subprotocols": [],
        "asgi": dict(ASGI_VERSION),
    }


class _InProcessSocket:
    """Both ends of one in-process WebSocket: the app's receive/send and the SDK's socket."""

    def __init__(self) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._client_closed = False  # the SDK side called close()
        self._closed: ConnectionClosed | None = None  # the app side closed or ended
        self.task: asyncio.Task[None] | None = None

    # The app's side ----------------------------------------------------------------------

    async def app_receive(self) -> Message:
        message = await self._to_app.get()
        if message["type"] == "websocket.disconnect":
            self._to_app.put_nowait(message)  # every later receive sees the disconnect too
        return message

    async def app_send(self, message: Message) -> None:
        if self._closed is not None:
            return  # already closed: nothing is listening any more
        if message["type"] == "websocket.close":
            self._closed = ConnectionClosed(
                int(message.get("code", CLOSE_NORMAL)), str(message.get("reason") or "")
            )
        self._from_app.put_nowait(dict(message))

    def app_ended(self, code: int, reason: str) -> None:
        """The endpoint returned (or failed, or was cancelled) without closing: tell the SDK."""
        if self._closed is None:
            self._closed = ConnectionClosed(code, reason)
            self._from_app.put_nowait({"type": "websocket.close", "code": code, "reason": reason})

    def disconnect(self, code: int = CLOSE_NORMAL) -> None:
        if not self._client_closed:
            self._client_closed = True
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": code})

    # The SDK's side (WebSocketLike) ----------------------------------------------------------

    async def handshake(self) -> None:
        self._to_app.put_nowait({"type": "websocket.connect"})
        message = await self._from_app.get()
        kind = message["type"]
        if kind == "websocket.accept":
            return
        self.disconnect()
        if kind == "websocket.close":
            raise ConnectionClosed(
                int(message.get("code", CLOSE_NORMAL)), str(message.get("reason") or "")
            )
        raise ConnectionClosed(None, f"the app refused the WebSocket ({kind})")

    async def send(self, data: str) -> None:
        if self._client_closed:
            raise ConnectionClosed(CLOSE_NORMAL, "closed by this side")
        if self._closed is not None:
            raise ConnectionClosed(self._closed.code, self._closed.reason)
        self._to_app.put_nowait({"type": "websocket.receive", "text": data})

    async def recv(self) -> str | bytes:
        if self._client_closed:
            raise ConnectionClosed(CLOSE_NORMAL, "closed by this side")
        message = await self._from_app.get()
        kind = message["type"]
        if kind == "websocket.send":
            text = message.get("text")
            if text is not None:
                return str(text)
            return bytes(message.get("bytes") or b"")
        # A close (from the app, or synthesised when it ended) stays queued for later calls.
        self._from_app.put_nowait(message)
        if kind == "websocket.close":
            raise ConnectionClosed(
                int(message.get("code", CLOSE_NORMAL)), str(message.get("reason") or "")
            )
        raise ConnectionClosed(None, f"unexpected ASGI message {kind!r}")

    async def close(self) -> None:
        self.disconnect(CLOSE_NORMAL)


class InProcessTransport:
    """Transport for an ASGI app in this event loop; use as `async with InProcessTransport(app)`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._tg: asyncio.TaskGroup | None = None
        self._sockets: set[_InProcessSocket] = set()
        self._lifespan_in: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan_out: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan_task: asyncio.Task[None] | None = None
        self._lifespan_supported = True

    # Transport ------------------------------------------------------------------------------

    def http_transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self._app)

    async def connect(self, url: str) -> WebSocketLike:
        if self._tg is None:
            raise RuntimeError("use `async with InProcessTransport(app)` before connecting")
        socket = _InProcessSocket()
        self._sockets.add(socket)
        socket.task = self._tg.create_task(self._run_websocket(socket, websocket_scope(url)))
        try:
            await socket.handshake()
        except BaseException:
            self._sockets.discard(socket)
            raise
        return socket

    async def _run_websocket(self, socket: _InProcessSocket, scope: Scope) -> None:
        code, reason = CLOSE_ABNORMAL, "the server ended the connection"
        try:
            await self._app(scope, socket.app_receive, socket.app_send)
        except asyncio.CancelledError:
            code, reason = CLOSE_GOING_AWAY, "transport shut down"
            raise
        except Exception:
            # A failing endpoint is a dropped connection for the SDK, not a transport crash.
            log.exception("the in-process WebSocket endpoint failed")
            code, reason = CLOSE_INTERNAL, "the server failed"
        finally:
            socket.app_ended(code, reason)
            self._sockets.discard(socket)

    # Lifespan -------------------------------------------------------------------------------

    async def _lifespan_receive(self) -> Message:
        return await self._lifespan_in.get()

    async def _lifespan_send(self, message: Message) -> None:
        self._lifespan_out.put_nowait(dict(message))

    async def _run_lifespan(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION), "state": {}}
        try:
            await self._app(scope, self._lifespan_receive, self._lifespan_send)
        except Exception as exc:
            # ASGI: an app that does not support lifespan raises on the lifespan scope.
            self._lifespan_out.put_nowait({"type": "_ended", "error": repr(exc)})
        else:
            self._lifespan_out.put_nowait({"type": "_ended", "error": None})

    async def _lifespan_step(self, event: str) -> None:
        self._lifespan_in.put_nowait({"type": f"lifespan.{event}"})
        message = await self._lifespan_out.get()
        kind = message["type"]
        if kind == f"lifespan.{event}.complete":
            return
        if kind == f"lifespan.{event}.failed":
            raise RuntimeError(f"ASGI lifespan {event} failed: {message.get('message', '')}")
        if kind == "_ended" and event == "startup":
            # The app ended before starting up: it does not use lifespan.
            log.debug("the app does not support the lifespan protocol (%s)", message["error"])
            self._lifespan_supported = False
            return
        raise RuntimeError(f"ASGI lifespan {event}: unexpected message {kind!r}")

    # Lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> InProcessTransport:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        try:
            self._lifespan_task = tg.create_task(self._run_lifespan())
            await self._lifespan_step("startup")
        except BaseException as exc:
            self._tg = None
            if self._lifespan_task is not None:
                self._lifespan_task.cancel()
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        try:
            # Close every open WebSocket as a client would, give the endpoints a moment to
            # finish, then cancel what is left; SDK readers see ConnectionClosed.
            sockets = list(self._sockets)
            for socket in sockets:
                socket.disconnect(CLOSE_GOING_AWAY)
            tasks = [s.task for s in sockets if s.task is not None and not s.task.done()]
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
                for task in pending:
                    task.cancel()
            for socket in sockets:
                socket.app_ended(CLOSE_GOING_AWAY, "transport shut down")
            if self._lifespan_supported:
                await self._lifespan_step("shutdown")
        except BaseException:
            if self._lifespan_task is not None:
                self._lifespan_task.cancel()
            raise
        finally:
            await tg.__aexit__(None, None, None)
