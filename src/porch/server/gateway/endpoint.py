"""The app that serves the gateway's WebSocket past FastAPI's middleware stack.

Every ASGI middleware is a coroutine frame that stays alive for as long as the call it wraps,
and a WebSocket call lasts as long as the connection: through FastAPI's stack (server errors,
exception handlers, exit stack, router, route, session wrapper) and Porch's two middlewares,
an idle connection kept about 8.5 KB of frames, exit stacks and handler tables (issue 10,
docs/performance.md "Idle connections"). None of them does anything for this endpoint: the
body limit is for HTTP requests, errors are answered in the protocol (gateway/connection.py),
and the one that matters, the client address from a trusted proxy, is a plain function
(server/proxies.py) the endpoint calls itself.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

GATEWAY_PATH = "/v1/ws"


class PorchApp(FastAPI):
    """FastAPI, with WebSocket calls to GATEWAY_PATH handed straight to `gateway`."""

    gateway: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.gateway is not None
            and scope["type"] == "websocket"
            and scope["path"] == GATEWAY_PATH
        ):
            await self.gateway(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
