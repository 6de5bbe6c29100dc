"""A large blob through the filesystem backend with flat server memory (spec §6: a 1 GB file
never sits in memory): 256 MiB up in parts (four at a time) and down again, while the server
process's RSS is sampled; it must grow by less than 64 MiB."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import register
from tests.integration.media_http import MediaHttp
from tests.integration.server import ServerProcess

PART = 8 << 20
SIZE = 256 << 20
GROWTH_LIMIT = 64 << 20

pytestmark = pytest.mark.slow


class PeakRss:
    """The highest RSS of a process (and its children), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        procs = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server-data", env={"PORCH_MEDIA_MAX_BYTES": str(300 << 20)})
    srv.start()
    yield srv
    srv.stop()


def part_bytes(n: int) -> bytes:
    # Deterministic, so the test need not keep 256 MiB around to compare.
    seed = hashlib.sha256(n.to_bytes(4, "big")).digest()
    length = min(PART, SIZE - (n - 1) * PART)
    return (seed * (PART // len(seed)))[:length]


async def test_a_large_blob_passes_with_flat_server_memory(
    server: ServerProcess, tmp_path: Path
) -> None:
    assert server.proc is not None
    alice = MediaHttp(server, await register(server, tmp_path / "alice"))
    try:
        await alice.upload(os.urandom(100_000))  # warm up every code path first
        with PeakRss(server.proc.pid) as rss:
            baseline = rss.now()
            slot = await alice.slot(SIZE)
            assert slot["part_size"] == PART and len(slot["parts"]) == SIZE // PART
            gate = asyncio.Semaphore(4)
            etags: dict[int, str] = {}

            async def put(part: dict[str, object]) -> None:
                n = int(str(part["n"]))
                async with gate:
                    r = await alice.put(str(part["url"]), part_bytes(n))
                assert r.status_code == 200, r.text
                etags[n] = r.headers["etag"]

            async with asyncio.TaskGroup() as tg:
                for part in slot["parts"]:
                    tg.create_task(put(part))
            await alice.complete(slot["id"], etags)

            grant = await alice.ok("GET", f"/v1/media/{slot['id']}")
            got, want = hashlib.sha256(), hashlib.sha256()
            for n in range(1, SIZE // PART + 1):
                want.update(part_bytes(n))
            async with alice.plain.stream("GET", str(alice.url(grant["url"]))) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_bytes():
                    got.update(chunk)
            assert got.hexdigest() == want.hexdigest()
        growth = rss.peak - baseline
        print(f"server RSS: {baseline >> 20} MiB, peak {rss.peak >> 20} MiB")
        assert growth < GROWTH_LIMIT, f"server RSS grew by {growth >> 20} MiB"
    finally:
        await alice.aclose()
