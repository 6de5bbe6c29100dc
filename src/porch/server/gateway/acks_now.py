"""Ack frames taken in the WebSocket layer's own callback, without waking the reader (issue 10).

Every envelope costs its device one `ack` frame. Handing each to the session's reader task
cost a future, a task step and the resumption of four coroutines per frame: at 1,000 devices,
a thousand wake-ups per group message (docs/performance.md, "Fan-out to 1,000 devices").
Where the layer offers it (picows, gateway/picows_socket.py), the session registers a handler
that the layer calls with each frame's bytes while the reader is parked waiting for its next
frame with nothing queued (so frame order is kept): an ack that needs nothing but taking is
taken there, exactly as the reader takes it (out of the window, into the ack queue); any other
frame, and an ack that is malformed or would have to wait for room, goes to the reader, which
answers it as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from porch.protocol import hot_frames as hf
from porch.protocol.errors import ProtocolError

ON_FRAME_EXTENSION = "porch.on_frame"

#: Takes a frame's bytes; True if it took the frame, False to leave it to the reader.
OnFrame = Callable[[bytes], bool]
#: Registers the session's handler (None: no handler).
SetOnFrame = Callable[[OnFrame | None], None]

# How the clients Porch ships encode an ack (orjson in Python, JSON.stringify in the browser,
# both in key order). Another encoding is still a valid ack: it only takes the reader's path.
ACK_HEAD = b'{"type":"ack",'


def frame_handler_slot(scope: Mapping[str, Any]) -> SetOnFrame | None:
    """The layer's registration of a frame handler, if it has one."""
    extensions: Mapping[str, Any] = scope.get("extensions") or {}
    register = extensions.get(ON_FRAME_EXTENSION)
    return register if callable(register) else None


def read_ack(data: bytes, limit: int) -> list[int] | None:
    """The ids of data if it is a well-formed ack frame of at most limit bytes, else None."""
    if len(data) > limit or not data.startswith(ACK_HEAD):
        return None
    try:
        frame = hf.read_client_frame(data)
    except ProtocolError:
        return None  # the reader sends the error frame
    return frame.ids if isinstance(frame, hf.Ack) else None
