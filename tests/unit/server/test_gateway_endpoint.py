"""PorchApp: the gateway's WebSocket skips the middleware stack; everything else does not."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from porch.server.gateway.endpoint import GATEWAY_PATH, PorchApp


class Recorder:
    """A middleware that notes every call it wraps."""

    calls: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        Recorder.calls.append(f"{scope['type']} {scope['path']}")
        await self.app(scope, receive, send)


def _app() -> tuple[PorchApp, list[Scope]]:
    app = PorchApp()
    app.add_middleware(Recorder)
    reached: list[Scope] = []

    async def gateway(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope)

    app.gateway = gateway
    Recorder.calls = []
    return app, reached


async def _nothing() -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": 1000}


async def _discard(message: Any) -> None:
    return None


async def test_the_gateway_websocket_goes_straight_to_the_endpoint() -> None:
    app, reached = _app()
    scope = {"type": "websocket", "path": GATEWAY_PATH, "headers": [], "client": ("1.2.3.4", 1)}
    await app(scope, _nothing, _discard)
    assert reached == [scope]
    assert Recorder.calls == []


async def test_other_calls_go_through_the_middleware() -> None:
    app, reached = _app()
    scope = {
        "type": "websocket",
        "path": "/v1/other",
        "raw_path": b"/v1/other",
        "headers": [],
        "query_string": b"",
        "client": ("1.2.3.4", 1),
    }
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    await app(scope, receive, send)
    assert reached == []
    assert Recorder.calls == ["websocket /v1/other"]
    assert sent and sent[0]["type"] == "websocket.close"  # no such route: refused
