"""Part PUTs that stall (filesystem backend, spec §6), against a real server on SQLite and
PostgreSQL: a body that stops sending is abandoned after PORCH_MEDIA_BODY_IDLE_SECONDS with a
JSON 408 and the connection closed, and concurrent PUTs are capped per slot and per account
(429 media_busy) — places that come back as the stalled connections go."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.media_http import MediaHttp, running_server
from tests.integration.server import ServerProcess

PART = 64 * 1024
PER_UPLOAD = 2
PER_ACCOUNT = 3
IDLE = 1.0
ENV = {
    "PORCH_MEDIA_PART_BYTES": str(PART),
    "PORCH_MEDIA_BODY_IDLE_SECONDS": str(IDLE),
    "PORCH_MEDIA_PART_PUTS_PER_UPLOAD": str(PER_UPLOAD),
    "PORCH_MEDIA_PART_PUTS_PER_ACCOUNT": str(PER_ACCOUNT),
}


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, {**server_env, **ENV}) as srv:
        yield srv


@pytest.fixture
async def alice(server: ServerProcess, register_client) -> AsyncIterator[MediaHttp]:  # type: ignore[no-untyped-def]
    http = MediaHttp(server, await register_client())
    yield http
    await http.aclose()


class Stalled:
    """A raw PUT that declares the whole part, sends one byte and then nothing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: ServerProcess, url: str, length: int) -> Stalled:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = f"PUT {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n"
        writer.write(head.encode() + b"x")
        await writer.drain()
        return cls(reader, writer)

    async def response(self, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers, body, whether the server then closed the connection)."""
        async with asyncio.timeout(timeout):
            status = int((await self.reader.readline()).split()[1])
            headers = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers["content-length"]))
            closed = await self.reader.read(1) == b""
        return status, headers, body, closed

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_a_stalled_part_is_abandoned_after_the_idle_time(
    server: ServerProcess, alice: MediaHttp
) -> None:
    blob = os.urandom(PART)
    slot = await alice.slot(len(blob))
    url = slot["parts"][0]["url"]
    start = time.monotonic()
    stalled = await Stalled.open(server, url, PART)
    status, headers, body, closed = await stalled.response(timeout=IDLE + 10)
    assert status == 408 and IDLE <= time.monotonic() - start < IDLE + 9
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body)["error"]["code"] == "request_timeout"
    assert closed  # the rest of the declared body is not waited for
    await stalled.close()
    # The part is not counted; sent whole, it is.
    status_now = await alice.ok("GET", f"/v1/media/uploads/{slot['id']}")
    assert status_now["received"] == []
    await alice.complete(slot["id"], await alice.put_parts(slot, blob))


async def test_concurrent_part_puts_are_capped(server: ServerProcess, alice: MediaHttp) -> None:
    slots = [await alice.slot(PER_UPLOAD * PART + 1) for _ in range(2)]
    first, second = ([p["url"] for p in s["parts"]] for s in slots)
    held = [await Stalled.open(server, first[i], PART) for i in range(PER_UPLOAD)]
    await asyncio.sleep(0.2)  # the server has taken them
    # The slot's cap: a third PUT to it is refused at once, with the JSON error shape.
    r = await alice.put(first[PER_UPLOAD], b"y")
    assert r.status_code == 429 and r.json()["error"]["code"] == "media_busy", r.text
    assert r.headers["retry-after"] == "1"
    # The account's cap, over its slots.
    held.append(await Stalled.open(server, second[0], PART))
    await asyncio.sleep(0.2)
    r = await alice.put(second[1], os.urandom(PART))
    assert r.status_code == 429 and r.json()["error"]["code"] == "media_busy", r.text
    # The places come back when the stalled PUTs go (here: closed by the client).
    for stalled in held:
        await stalled.close()
    await asyncio.sleep(0.3)
    r = await alice.put(second[1], os.urandom(PART))
    assert r.status_code == 200, r.text
