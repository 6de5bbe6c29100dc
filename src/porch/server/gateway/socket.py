"""What a gateway session needs of its WebSocket, whichever layer serves it.

Starlette's WebSocket (the ASGI path through uvicorn and websockets' sans-I/O protocol,
server/edge.py) has these members; so does the picows adapter (gateway/picows_stack.py). The
session (gateway/connection.py) uses nothing else, so the two stacks run the same logic.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Protocol

from starlette.datastructures import Address
from starlette.types import Message


class GatewaySocket(Protocol):
    @property
    def scope(self) -> MutableMapping[str, Any]:
        """The request's `headers` (emptied once read) and `extensions`: the layer's
        several-frames writer and its pre-authentication limit (gateway/outbox.py,
        gateway/admission.py)."""

    @property
    def client(self) -> Address | None: ...

    async def accept(self) -> None: ...

    async def receive(self) -> Message:
        """`websocket.receive` with `text` or `bytes`, or `websocket.disconnect`."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...
