"""The optional early delete of attachment blobs (spec §6, PORCH_MEDIA_DELETE_WHEN_DOWNLOADED),
end to end on SQLite and on PostgreSQL + Redis: a blob announced for N recipient devices stays
until N distinct devices fetched a download URL, then goes with the sweep once the last URL
handed out has expired; its id and its old URL then answer 404 media_not_found.

The server runs in this process on a clock the test moves (as in test_envelope_ttl), so the
URL lifetime passes without sleeping through it; the sweep runs on that clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from porch.server.app import create_app, make_store
from tests.integration.conftest import register
from tests.integration.media_http import MediaHttp
from tests.integration.server import (
    ServerProcess,
    free_port,
    in_process_settings,
    serving_in_process,
)
from tests.integration.test_envelope_ttl import SteppedClock

PART = 64 * 1024
URL_SECONDS = 60


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, server_env: dict[str, str]
) -> AsyncIterator[tuple[ServerProcess, SteppedClock, MediaHttp, MediaHttp]]:
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    settings = in_process_settings(
        srv,
        server_env,
        sweep_interval_seconds=0.1,
        media_delete_when_downloaded=True,
        media_part_bytes=PART,
        media_download_url_seconds=URL_SECONDS,
    )
    clock = SteppedClock()
    app = create_app(settings, store=make_store(settings), clock=clock)
    async with serving_in_process(app, srv.port):
        alice = MediaHttp(srv, await register(srv, tmp_path / "alice"))
        bob = MediaHttp(srv, await register(srv, tmp_path / "bob"))
        try:
            yield srv, clock, alice, bob
        finally:
            await alice.aclose()
            await bob.aclose()


async def sweeps(n: int = 5) -> None:
    await asyncio.sleep(n * 0.1 + 0.2)


async def test_a_blob_goes_once_every_recipient_device_fetched_it(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    async with serving(tmp_path, server_env) as (srv, clock, alice, bob):
        blob = os.urandom(2 * PART + 100)
        media_id = await alice.upload(blob, recipients=2)
        stored = srv.data_dir / "media" / "blobs" / media_id[:2] / media_id
        assert stored.read_bytes() == blob

        assert await bob.fetch(media_id) == blob  # one recipient device of two
        clock.offset_ms += (URL_SECONDS + 1) * 1000
        await sweeps()
        assert stored.exists(), "deleted before every recipient device fetched it"
        assert await bob.fetch(media_id) == blob  # the same device again counts once
        clock.offset_ms += (URL_SECONDS + 1) * 1000
        await sweeps()
        assert stored.exists()

        grant = await alice.ok("GET", f"/v1/media/{media_id}")  # the second device
        await sweeps()
        assert stored.exists(), "deleted before the URL just handed out expired"
        r = await alice.plain.get(alice.url(grant["url"]))
        assert r.status_code == 200 and r.content == blob

        clock.offset_ms += (URL_SECONDS + 1) * 1000
        deadline = time.monotonic() + 10
        while stored.exists():
            assert time.monotonic() < deadline, "the sweep did not delete the blob"
            await asyncio.sleep(0.05)
        error = await bob.refused("GET", f"/v1/media/{media_id}", 404, "media_not_found")
        assert "ask the sender to send it again" in error["message"]


async def test_without_recipients_a_blob_keeps_its_retention(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    async with serving(tmp_path, server_env) as (_, clock, alice, bob):
        blob = os.urandom(100)
        media_id = await alice.upload(blob)  # no recipients announced: nothing to count to
        assert await bob.fetch(media_id) == blob
        assert await alice.fetch(media_id) == blob
        clock.offset_ms += (URL_SECONDS + 1) * 1000
        await sweeps()
        assert await bob.fetch(media_id) == blob
