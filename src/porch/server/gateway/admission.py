"""Admission of WebSocket connections that have not authenticated yet.

An unauthenticated socket costs the server memory and a task but proves nothing, so their
number is capped per client address and in total (per process). A connection takes a ticket
before the handshake is accepted and gives it back when it authenticates or ends; one over a
cap is refused with an HTTP response (429 for its address, 503 for the whole server) before
the handshake completes, so it never gets as far as sending frames. Authenticated connections
are not counted here: they are bounded by devices and by the per-connection limits.

The WebSocket layer keeps its own pre-authentication limit (server/edge.py): a small frame
size until `ready`, raised through the `porch.authenticated` ASGI extension.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.websockets import WebSocket

from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.socket import GatewaySocket

# Seconds a refused client is told to wait: about an authentication timeout.
RETRY_AFTER = 10

# Set by server/edge.py's WebSocket protocol: call it once the connection has authenticated.
AUTHENTICATED_EXTENSION = "porch.authenticated"


class Ticket:
    """One unauthenticated connection's place; release() is idempotent."""

    __slots__ = ("_address", "_admission")

    def __init__(self, admission: Admission, address: str) -> None:
        self._admission: Admission | None = admission
        self._address = address

    def release(self) -> None:
        if self._admission is not None:
            self._admission._leave(self._address)
            self._admission = None


class Admission:
    def __init__(self, per_address: int, total: int) -> None:
        self.per_address = per_address
        self.total = total
        self._counts: dict[str, int] = {}
        self._total = 0

    @property
    def waiting(self) -> int:
        return self._total

    def admit(self, address: str) -> Ticket:
        """A ticket, or ProtocolError (rate_limited for the address, unavailable in total)."""
        if self._total >= self.total:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                "too many connections are waiting to authenticate; retry later",
                retry_after=RETRY_AFTER,
            )
        count = self._counts.get(address, 0)
        if count >= self.per_address:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"at most {self.per_address} connections from one address may wait to authenticate",
                retry_after=RETRY_AFTER,
            )
        self._counts[address] = count + 1
        self._total += 1
        return Ticket(self, address)

    def _leave(self, address: str) -> None:
        count = self._counts[address] - 1
        if count:
            self._counts[address] = count
        else:
            del self._counts[address]  # the dict holds only addresses with waiting sockets
        self._total -= 1


async def refuse(ws: WebSocket, exc: ProtocolError) -> None:
    """Answer the upgrade request with an HTTP error instead of accepting it."""
    status = 503 if exc.code == ErrorCode.UNAVAILABLE else 429
    headers = {"retry-after": str(exc.details.get("retry_after", RETRY_AFTER))}
    body = dumps({"error": exc.to_dict()})
    response = Response(body, status, headers, media_type="application/json")
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(response)
    else:  # an ASGI server without denial responses: a plain 403 refusal
        await ws.close()


def mark_authenticated(ws: GatewaySocket) -> None:
    """Lift the WebSocket layer's pre-authentication frame limit, where the server has one."""
    extensions: dict[str, Any] = ws.scope.get("extensions") or {}
    lift = extensions.get(AUTHENTICATED_EXTENSION)
    if callable(lift):
        lift()
