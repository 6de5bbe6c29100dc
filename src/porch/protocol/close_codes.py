"""WebSocket close codes (docs/protocol.md, "Close codes"), in one place for the gateway, the
SDK, the benchmark and the tests.

1000-1015 are RFC 6455 section 7.4.1 codes (sent by the WebSocket layer or the ASGI server,
1006 only ever reported locally); 4000-4999 are for applications, and Porch's two follow
HTTP's 401 and 409 so that they read as what they mean.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    ABNORMAL = 1006  # no close frame at all; never sent, only reported by a client library
    MESSAGE_TOO_BIG = 1009  # a frame over the socket cap (4 KiB before ready)
    INTERNAL_ERROR = 1011  # uvicorn: keepalive ping not answered
    SERVICE_RESTART = 1012  # uvicorn: server shutting down
    # The gateway's own: authentication failed or timed out, or the device was removed or
    # registered again; do not retry with the same credentials.
    AUTH = 4401
    # The same device connected again and this connection was replaced; do not reconnect.
    REPLACED = 4409
