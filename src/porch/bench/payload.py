"""Message bodies that stand in for ciphertext and carry their own send time and number.

Payloads are random bytes, base64-encoded once before the run, so the benchmark measures the
server, not the cryptography. The first 12 bytes of each body are (send time in ns from
``time.time_ns()``, sequence number): the receiver computes one-way latency (one clock, one
machine) and detects lost or duplicated messages without any side channel.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

from porch.bench.raw import RawDevice
from porch.protocol import client_frames as cf
from porch.protocol import fields

HEADER = struct.Struct(">QI")  # send time (ns since the epoch), sequence number
HEADER_B64 = 16  # 12 bytes -> 16 base64 characters, no padding, so bodies can be concatenated
POOL = 32
ACK_BATCH = 64  # a receiver acknowledges every ACK_BATCH envelopes...
ACK_EVERY = 0.002  # ...or every ACK_EVERY seconds, like a real client
MAX_ACK_IDS = fields.MAX_ACK_IDS


class Bodies:
    def __init__(self, payload_bytes: int) -> None:
        size = max(0, payload_bytes - HEADER.size)
        self._pool = [base64.b64encode(os.urandom(size)).decode() for _ in range(POOL)]

    def body(self, send_ns: int, seq: int) -> str:
        return base64.b64encode(HEADER.pack(send_ns, seq)).decode() + self._pool[seq % POOL]


def read_header(body: str) -> tuple[int, int]:
    """(send time ns, sequence number) of a body made by :class:`Bodies`."""
    sent_ns, seq = HEADER.unpack(base64.b64decode(body[:HEADER_B64]))
    return int(sent_ns), int(seq)


def send_frame(client_id: str, to: RawDevice, body: str) -> dict[str, Any]:
    message = cf.device_message(to.device_id, to.registration_id, 1, body)
    return cf.send(client_id, [cf.destination(to.account_id, [message])])
