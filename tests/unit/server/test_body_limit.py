"""BodyLimitMiddleware on a bare ASGI call: a Content-Length it cannot use is refused."""

from __future__ import annotations

import json

import pytest
from starlette.types import Message, Receive, Scope, Send

from porch.server.api.limits import BodyLimitMiddleware


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _call(content_length: bytes) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "headers": [(b"content-length", content_length)]}
    await BodyLimitMiddleware(_app, 1024)(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    "value", [b"9" * 5000, b"9" * 19, b"1025", b"-1", b"0x10", b"1e3", b"", b"\xd9\xa3"]
)
async def test_unusable_or_oversized_content_length_is_413(value: bytes) -> None:
    start, body = await _call(value)
    assert start["status"] == 413
    assert json.loads(body["body"])["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("value", [b"2", b"1024", b"000000000000000002"])
async def test_usable_content_length_reaches_the_app(value: bytes) -> None:
    start, _ = await _call(value)
    assert start["status"] == 204


async def test_only_puts_under_the_exempt_prefix_pass_unread() -> None:
    async def run(method: str, path: str) -> int:
        sent: list[Message] = []
        seen: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(await receive())
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def receive() -> Message:
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}

        async def send(message: Message) -> None:
            sent.append(message)

        scope: Scope = {
            "type": "http",
            "method": method,
            "path": path,
            "headers": [(b"content-length", b"999999")],
        }
        await BodyLimitMiddleware(app, 1024, exempt="/v1/media/parts/")(scope, receive, send)
        # Exempt: the app reads the stream itself, chunk by chunk (more_body still set).
        assert not seen or seen[0]["more_body"]
        return int(sent[0]["status"])

    assert await run("PUT", "/v1/media/parts/abc/1") == 204
    assert await run("POST", "/v1/media/parts/abc/1") == 413
    assert await run("PUT", "/v1/media/uploads") == 413
    assert await run("PUT", "/v1/devices/list") == 413
