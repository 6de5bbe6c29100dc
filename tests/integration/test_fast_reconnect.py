"""A device that reconnects at once (a phone flapping between networks) is answered every time.

The new connection's `auth` may land while the previous connection of the same device is still
ending: its session's task group finishing, its bus subscription not yet closed. Subscribing the
new one replaces the old one (docs/protocol.md, "Close codes", 4409), and that hand-over used to
call into the ending session's task group, which raised inside the *new* connection's
subscribe: the new socket was dropped with nothing said (issue 10's open finding). Here the
old connection ends in each of the ways it can (the client's FIN, a close frame, the server's
own 1002 for a bad frame) at a spread of small delays before the new one's `auth`, so that
some of them land in that window. Runs on both WebSocket stacks and on PostgreSQL + Redis.
"""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from porch.client import Client
from tests.integration.conftest import BOTH_STACKS, server_env_of
from tests.integration.server import ServerProcess
from tests.integration.test_hot_path_attacks import still_delivers

server_env = pytest.fixture(params=BOTH_STACKS, name="server_env")(server_env_of)

UPGRADE = (
    b"GET /v1/ws HTTP/1.1\r\nHost: porch\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
MASK = b"\x01\x02\x03\x04"
ROUNDS = 60
# Seconds between the old connection's end and the new one's auth, cycled through.
DELAYS = [0.0, 0.0005, 0.001, 0.002, 0.003, 0.005]
ENDINGS = ["fin", "close frame", "bad frame"]


def masked(op: int, payload: bytes) -> bytes:
    """A client frame (masked, as RFC 6455 5.3 requires), payload under 64 KiB."""
    n = len(payload)
    head = (
        bytes([0x80 | op, 0x80 | n]) if n < 126 else bytes([0x80 | op, 0xFE]) + struct.pack("!H", n)
    )
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


class Wire:
    """One raw WebSocket connection: the bytes the server sends, read as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.data = reader, writer, b""

    @classmethod
    async def upgraded(cls, server: ServerProcess) -> Wire:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(UPGRADE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def until(self, marker: bytes, timeout: float = 20.0) -> None:
        """Reads until marker arrives; fails saying what did arrive (nothing, a close...)."""
        async with asyncio.timeout(timeout):
            while marker not in self.data:
                more = await self.reader.read(1 << 16)
                assert more, f"the server closed the socket; it had sent {self.data!r}"
                self.data += more

    async def end(self, how: str) -> None:
        if how == "close frame":
            self.writer.write(masked(8, struct.pack("!H", 1000)))
        elif how == "bad frame":  # unmasked: the WebSocket layer's own 1002
            ping = b'{"type":"ping","n":0}'
            self.writer.write(bytes([0x81, len(ping)]) + ping)
            await self.until(b"\x88")  # the server's close frame
        self.writer.close()


async def test_same_device_reconnecting_at_once_is_answered_every_time(
    server: ServerProcess, register_client
) -> None:
    alice: Client = await register_client()
    c = alice.credentials
    auth = json.dumps(
        {"type": "auth", "account": c.account_id, "device": c.device_id, "password": c.password}
    ).encode()
    old: Wire | None = None
    for n in range(ROUNDS):
        new = await Wire.upgraded(server)  # connected, not yet authenticated
        if old is not None:
            await old.end(ENDINGS[n % len(ENDINGS)])
            await asyncio.sleep(DELAYS[n % len(DELAYS)])
        ping = json.dumps({"type": "ping", "n": n}).encode()
        new.writer.write(masked(1, auth) + masked(1, ping))
        try:
            await new.until(b'"pong","n":%d' % n)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"round {n}: {exc!r}") from None
        assert b'"type":"ready"' in new.data, (n, new.data)
        assert b"\x88" not in new.data, (n, new.data)  # not closed (no 4409: it is the new one)
        old = new
    assert old is not None
    old.writer.close()
    # The server is still whole: the device's SDK connects, sends and is delivered to.
    await still_delivers(alice, await register_client(), "after fast reconnects")


async def test_the_replaced_connection_is_closed_4409(
    server: ServerProcess, register_client
) -> None:
    """The other side of a takeover: the older, still open connection is told, and ends."""
    alice: Client = await register_client()
    c = alice.credentials
    auth = json.dumps(
        {"type": "auth", "account": c.account_id, "device": c.device_id, "password": c.password}
    ).encode()
    ping = masked(1, b'{"type":"ping","n":1}')
    old = await Wire.upgraded(server)
    old.writer.write(masked(1, auth) + ping)
    await old.until(b'"pong"')
    new = await Wire.upgraded(server)
    new.writer.write(masked(1, auth) + ping)
    await new.until(b'"pong"')
    await old.until(b"\x88\x02" + struct.pack("!H", 4409))  # a close frame, code 4409
    new.writer.write(ping)  # the new one carries on
    new.data = b""
    await new.until(b'"pong"')
    for wire in (old, new):
        wire.writer.close()
