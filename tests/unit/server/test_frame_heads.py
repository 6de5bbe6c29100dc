"""HeadGuard: frame headers followed through a byte stream, for the limit before `ready`."""

from __future__ import annotations

import struct

from porch.server.gateway.frame_heads import HeadGuard


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, masked: bool = True) -> bytes:
    """One frame as a client sends it (RFC 6455 section 5.2), the mask key all zeros."""
    first = (0x80 if fin else 0) | opcode
    mask = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head = bytes((first, mask | n))
    elif n < 1 << 16:
        head = bytes((first, mask | 126)) + struct.pack("!H", n)
    else:
        head = bytes((first, mask | 127)) + struct.pack("!Q", n)
    return head + (b"\0\0\0\0" if masked else b"") + payload


def test_frames_within_the_limit_pass_whatever_the_chunking() -> None:
    stream = frame(b"a" * 100) + frame(b"b" * 4000) + frame(b"", opcode=0x9) + frame(b"c" * 200)
    for step in (1, 3, 7, 64, len(stream)):
        guard = HeadGuard(4096)
        assert all(guard.feed(stream[i : i + step]) for i in range(0, len(stream), step))


def test_a_header_announcing_more_is_refused_before_its_payload() -> None:
    guard = HeadGuard(4096)
    assert guard.feed(frame(b"x" * 10))
    head = frame(b"y" * 5000)[:8]  # 16-bit length and mask key: the header alone
    assert not guard.feed(head)
    big = struct.pack("!BBQ", 0x81, 0xFF, 1 << 20) + b"\0\0\0\0"
    assert not HeadGuard(4096).feed(big)


def test_fragments_of_one_message_count_together() -> None:
    guard = HeadGuard(4096)
    assert guard.feed(frame(b"a" * 3000, fin=False))
    assert guard.feed(frame(b"", opcode=0xA))  # a pong between fragments does not count
    assert not guard.feed(frame(b"b" * 1200, opcode=0x0))
    # A finished message starts the count again.
    guard = HeadGuard(4096)
    assert guard.feed(frame(b"a" * 3000, fin=False) + frame(b"b" * 1000, opcode=0x0))
    assert guard.feed(frame(b"c" * 4000))


def test_an_oversize_control_frame_is_refused() -> None:
    assert not HeadGuard(4096).feed(frame(b"p" * 126, opcode=0x9))
