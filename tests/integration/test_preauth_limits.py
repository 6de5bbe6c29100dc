"""Floods from clients that never authenticate stay cheap, and everyone else carries on.

Before the pre-authentication limits (server/edge.py, gateway/admission.py) the same floods
grew the server by about 160 MiB (300 sockets holding 512 KiB partial frames) and 330 MiB (8
unterminated 32 MiB headers); docs/operations.md has the figures. The server's RSS is sampled
throughout each flood and its peak growth must stay under RSS_BOUND.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import psutil
import pytest
import websockets

from porch.client import Client, Message
from porch.client.transport import ConnectionClosed, NetworkTransport
from tests.integration.conftest import BOTH_STACKS, register, server_env_of
from tests.integration.server import ServerProcess

# Also against the gateway on websockets (PORCH_WS_STACK=websockets; picows is the default).
server_env = pytest.fixture(params=BOTH_STACKS, name="server_env")(server_env_of)

RSS_BOUND = 40 << 20
SOCKETS = 300
UPGRADE = (
    b"GET /v1/ws HTTP/1.1\r\nHost: porch\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def frame_head(length: int) -> bytes:
    """A masked text frame's header announcing `length` bytes (RFC 6455, section 5.2), in
    the fewest length bytes, as the RFC requires (picows refuses any other, 1002)."""
    if length < 126:
        return bytes([0x81, 0x80 | length]) + b"\0\0\0\0"
    if length < 1 << 16:
        return bytes([0x81, 0xFE]) + struct.pack("!H", length) + b"\0\0\0\0"
    return bytes([0x81, 0xFF]) + struct.pack("!Q", length) + b"\0\0\0\0"


@contextlib.asynccontextmanager
async def peak_rss(server: ServerProcess) -> AsyncIterator[Callable[[], int]]:
    """Samples the server's RSS while the block runs; yields a function giving peak growth."""
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    base = proc.memory_info().rss
    peak = base

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(sample())
    try:
        yield lambda: peak - base
    finally:
        task.cancel()
        peak = max(peak, proc.memory_info().rss)


async def upgrade(server: ServerProcess, outcome: Counter[str]) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(UPGRADE)
    head = await reader.readuntil(b"\r\n\r\n")
    outcome[head.split(b" ", 2)[1].decode()] += 1
    return reader, writer


async def send_quietly(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write, tolerating a server that has already closed the socket."""
    with contextlib.suppress(ConnectionError, TimeoutError):
        writer.write(data)
        await asyncio.wait_for(writer.drain(), 5)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        while await asyncio.wait_for(reader.read(65536), 5):
            pass  # a close frame (1009) or an HTTP error, then EOF
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def close_all(streams: list[Stream]) -> None:
    for _, writer in streams:
        writer.close()
    await asyncio.sleep(0.5)


async def still_delivers(alice: Client, bob: Client, text: str) -> None:
    async with alice, bob:
        await alice.send_text("@bob", text)
        event = await bob.next_event(15)
        while not isinstance(event, Message):
            event = await bob.next_event(15)
        assert event.text == text


@pytest.fixture
async def pair(register_client):  # type: ignore[no-untyped-def]
    return await register_client(username="alice"), await register_client(username="bob")


async def test_partial_frames_before_auth_are_refused_at_their_header(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    outcome: Counter[str] = Counter()
    streams: list[Stream] = []
    async with peak_rss(server) as growth:
        for _ in range(SOCKETS):
            reader, writer = await upgrade(server, outcome)
            streams.append((reader, writer))
            await send_quietly(writer, frame_head(1 << 20) + b"x" * (512 << 10))
        closed = [await closed_by_server(reader) for reader, _ in streams]
    await close_all(streams)
    assert outcome["101"] == SOCKETS
    # Closed (1009) as soon as the header announced more than the pre-auth cap.
    assert all(closed)
    assert growth() < RSS_BOUND, f"RSS grew by {growth() >> 20} MiB"
    await still_delivers(*pair, "after the partial frames")


async def test_unauthenticated_sockets_are_capped_per_address(tmp_path, server_env) -> None:  # type: ignore[no-untyped-def]
    # A long auth timeout, so that no waiting socket is let go while the flood is still
    # being opened on a slow machine (the count below is exact).
    server = ServerProcess(
        tmp_path / "capped", env=dict(server_env, PORCH_AUTH_TIMEOUT_SECONDS="120")
    )
    server.start()
    try:
        pair = (
            await register(server, tmp_path / "a", username="alice"),
            await register(server, tmp_path / "b", username="bob"),
        )
        await _flood_waiting_sockets(server, pair)
        # Each refusal is an answer, not a server error: uvicorn logged one ERROR per 429.
        log = server.log_path.read_text(errors="replace")
        assert "without completing handshake" not in log and "Traceback" not in log
    finally:
        server.stop()


async def _flood_waiting_sockets(server: ServerProcess, pair: tuple[Client, Client]) -> None:
    # Frames just under the pre-auth cap, held open: the cheapest way to hold memory now.
    outcome: Counter[str] = Counter()
    streams: list[Stream] = []
    async with peak_rss(server) as growth:
        for _ in range(SOCKETS):
            reader, writer = await upgrade(server, outcome)
            streams.append((reader, writer))
            await send_quietly(writer, frame_head(3916) + b"x" * 3900)
        await asyncio.sleep(1)
    # The default cap: 64 from one address wait to authenticate; the rest get 429.
    assert (outcome["101"], outcome["429"]) == (64, SOCKETS - 64)
    assert growth() < RSS_BOUND, f"RSS grew by {growth() >> 20} MiB"
    # The waiting ones hold the address's places: the next is refused with a structured error
    # before its handshake completes...
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/ws")
    response = refused.value.response
    assert response.status_code == 429 and response.headers["retry-after"]
    assert json.loads(response.body)["error"]["code"] == "rate_limited"
    # ... which the SDK words as a busy server, not one that is down (new-user trial).
    with pytest.raises(ConnectionClosed) as busy:
        await NetworkTransport().connect(f"ws://127.0.0.1:{server.port}/v1/ws")
    assert "too many connections from this address (HTTP 429)" in busy.value.reason
    assert "try again in" in busy.value.reason
    await close_all(streams)
    # ...and clients from the address are let in as soon as they are gone.
    await still_delivers(*pair, "after the waiting sockets")


async def answer(reader: asyncio.StreamReader) -> bytes:
    """What the server said before closing; b"" if the close reset away the answer (the
    server does not linger reading a flood just to deliver its 431)."""
    try:
        return await asyncio.wait_for(reader.read(4096), 5)
    except ConnectionError:
        return b""


async def test_unterminated_headers_are_refused_431(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    streams: list[Stream] = []
    chunk = b"a" * (1 << 20)
    async with peak_rss(server) as growth:
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: porch\r\nX-Big: ")
            streams.append((reader, writer))

        async def flood(writer: asyncio.StreamWriter) -> int:
            sent = 0
            for _ in range(32):  # 32 MiB each, never terminated
                if writer.is_closing():
                    break
                await send_quietly(writer, chunk)
                sent += 1
            return sent

        await asyncio.gather(*(flood(w) for _, w in streams))
        answers = [await answer(r) for r, _ in streams]
        closed = [await closed_by_server(r) for r, _ in streams]
    await close_all(streams)
    assert all(a == b"" or a.startswith(b"HTTP/1.1 431 ") for a in answers), answers
    assert all(closed)
    assert growth() < RSS_BOUND, f"RSS grew by {growth() >> 20} MiB"

    # A head just over the cap, then silence: the answer arrives whole.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (17 << 10))
    response = await answer(reader)
    writer.close()
    assert response.startswith(b"HTTP/1.1 431 "), response
    error = json.loads(response.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "request_too_large" and error["limit"] == 16 << 10
    await still_delivers(*pair, "after the headers")


async def test_slow_headers_time_out(tmp_path, server_env) -> None:  # type: ignore[no-untyped-def]
    env = dict(server_env, PORCH_HEADER_TIMEOUT_SECONDS="1", PORCH_AUTH_TIMEOUT_SECONDS="1")
    srv = ServerProcess(tmp_path / "slow", env=env)
    srv.start()
    try:
        silent = await asyncio.open_connection("127.0.0.1", srv.port)
        slow = await asyncio.open_connection("127.0.0.1", srv.port)
        slow[1].write(b"GET /healthz HTTP/1.1\r\n")
        loop = asyncio.get_running_loop()
        start = loop.time()
        answers: list[Awaitable[bytes]] = [
            asyncio.wait_for(s[0].read(200), 5) for s in (silent, slow)
        ]
        for answer in answers:
            assert (await answer).startswith(b"HTTP/1.1 408 ")
        assert loop.time() - start < 4
        # A request that completes its head in time is served as usual.
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: porch\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(200), 5)).startswith(b"HTTP/1.1 200 ")
        for _, w in (silent, slow, (reader, writer)):
            w.close()

        # Past the handshake, a trickled auth frame is cut off by the auth timeout: each frame
        # must arrive whole in time, however busy the socket looks.
        outcome: Counter[str] = Counter()
        reader, writer = await upgrade(srv, outcome)
        assert outcome["101"] == 1
        start = loop.time()
        frame = b'{"type": "auth", "account": "x", "device": 1, "password": "slow"}'
        writer.write(frame_head(len(frame)))
        for byte in frame[:20]:
            await send_quietly(writer, bytes([byte]))
            await asyncio.sleep(0.2)
        data = b""
        while len(data) < data.find(b"\x88") + 4 or b"\x88" not in data:
            data += await asyncio.wait_for(reader.read(4096), 5)
        error, _, close = data.partition(b"\x88")  # RFC 6455: 0x88 starts a close frame
        assert b"auth_required" in error and close[1:3] == (4401).to_bytes(2, "big")
        assert loop.time() - start < 6
        writer.close()
    finally:
        srv.stop()
