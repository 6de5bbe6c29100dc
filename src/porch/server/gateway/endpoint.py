"""The app that serves the gateway's WebSocket past FastAPI's middleware stack.

Every ASGI middleware is a coroutine frame that stays alive for as long as the call it wraps,
and a WebSocket call lasts as long as the connection: through FastAPI's stack (server errors,
exception handlers, exit stack, router, route, session wrapper) and Porch's two middlewares,
an idle connection kept about 8.5 KB of frames, exit stacks and handler tables (issue 10,
docs/performance.md "Idle connections"). None of them does anything for this endpoint: the
body limit is for HTTP requests, errors are answered in the protocol (gateway/connection.py),
and the one that matters, the client address from a trusted proxy, is a plain function
(server/proxies.py) the endpoint calls itself.

The app also carries `sessions`, what any WebSocket layer needs to start a gateway session:
the picows stack (gateway/picows_stack.py) is not an ASGI server and finds them here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from porch.server.gateway.admission import Admission, Ticket
from porch.server.gateway.socket import GatewaySocket
from porch.server.metrics import Metrics
from porch.server.proxies import TrustedProxies

GATEWAY_PATH = "/v1/ws"


@dataclass(frozen=True, slots=True)
class Sessions:
    """The gateway's entry: admission before the handshake, the trusted proxies that decide
    the client address, and `run`, one session on an accepted socket (gateway/connection.py)."""

    admission: Admission
    proxies: TrustedProxies
    metrics: Metrics
    heartbeat: float  # seconds between pings; a ping unanswered as long closes (1011)
    preauth_frame_bytes: int
    run: Callable[[GatewaySocket, Ticket], Awaitable[None]]


class PorchApp(FastAPI):
    """FastAPI, with WebSocket calls to GATEWAY_PATH handed straight to `gateway`."""

    gateway: ASGIApp | None = None
    sessions: Sessions | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.gateway is not None
            and scope["type"] == "websocket"
            and scope["path"] == GATEWAY_PATH
        ):
            await self.gateway(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def sessions_of(app: Any) -> Sessions:
    """The Sessions of the app a server loaded, past any wrapper that keeps it as `.app`."""
    for _ in range(8):
        found = getattr(app, "sessions", None)
        if isinstance(found, Sessions):
            return found
        app = getattr(app, "app", None)
    raise RuntimeError("the picows WebSocket stack needs Porch's app (porch.server.app)")
