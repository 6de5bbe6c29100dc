"""WebSocket frame headers read off the wire, for the limit before authentication.

picows fixes a connection's frame size limit when the connection is made, but the gateway
needs two: PORCH_PREAUTH_MAX_FRAME_BYTES until `ready`, the socket cap after (server/edge.py
does the same with websockets' `max_message_size`). So until the session authenticates, the
picows stack (gateway/picows_stack.py) runs the bytes it reads through HeadGuard first, and
refuses a message whose frame header announces more than the small limit, before its payload
is buffered: the partial-frame flood of docs/operations.md ("Pre-authentication limits") stays
as cheap as on the other stack. After `ready` the guard is dropped and picows's own limit
(the socket cap) applies.

RFC 6455 section 5.2: byte 0 holds FIN and the opcode, byte 1 the mask bit and a 7-bit length;
126 means a 16-bit length follows, 127 a 64-bit one; then the 4-byte mask key, if masked.
"""

from __future__ import annotations

CONTROL = 0x8  # opcodes 0x8-0xF are control frames (close, ping, pong): at most 125 bytes


class HeadGuard:
    """Follows frame boundaries through the byte stream; `feed` says whether every message
    seen so far fits `limit` (fragments of one message count together)."""

    __slots__ = ("_head", "_limit", "_message", "_skip")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._head = bytearray()  # the header being read, at most 14 bytes
        self._skip = 0  # payload bytes of the current frame still to pass over
        self._message = 0  # payload bytes of the current data message so far

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        i, n = 0, len(data)
        head = self._head
        while i < n:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            head.append(data[i])
            i += 1
            if len(head) < 2:
                continue
            short = head[1] & 0x7F
            size = 2 + (2 if short == 126 else 8 if short == 127 else 0)
            if len(head) < size + (4 if head[1] & 0x80 else 0):
                continue
            length = short if short < 126 else int.from_bytes(head[2:size], "big")
            opcode, fin = head[0] & 0x0F, head[0] & 0x80
            head.clear()
            if opcode < CONTROL:
                self._message += length
                if self._message > self._limit:
                    return False
                if fin:
                    self._message = 0
            elif length > 125:
                return False  # a control frame that long is a protocol error anyway
            self._skip = length
        return True
