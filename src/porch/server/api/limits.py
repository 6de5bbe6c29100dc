"""A request-body size limit that holds for chunked bodies too (no Content-Length)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError

DISCARD_MAX = 4 << 20


class BodyLimitMiddleware:
    """Reads the whole body first, up to `limit` bytes, then hands it to the app; a larger
    body is answered 413 request_too_large without the app seeing any of it. PUTs under
    `exempt` (a path prefix: media parts) go straight through: that route streams its body
    and enforces its own limit."""

    def __init__(self, app: ASGIApp, limit: int, exempt: str | None = None) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.exempt is not None
            and scope["method"] == "PUT"
            and scope["path"].startswith(self.exempt)
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            # The length is checked before int(): Python refuses to convert over 4300 digits.
            if name == b"content-length" and (
                not value.isdigit() or len(value) > 18 or int(value) > self.limit
            ):
                await self._refuse(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._discard(receive, message, size)
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _discard(self, receive: Receive, message: Message, size: int) -> None:
        # Read (and drop) the rest of a moderately oversized body, so that the client, still
        # sending, gets the 413 instead of a reset connection. Past DISCARD_MAX, just close.
        while message.get("more_body", False) and size <= DISCARD_MAX:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))

    async def _refuse(self, send: Send) -> None:
        error = ProtocolError(
            ErrorCode.REQUEST_TOO_LARGE, f"request bodies are limited to {self.limit} bytes"
        )
        body = dumps({"error": error.to_dict()})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
