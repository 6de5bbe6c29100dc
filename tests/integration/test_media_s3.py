"""The S3 media backend against a real SeaweedFS (tests/integration/seaweed.py): parts go to
the store's presigned UploadPart URLs (never through Porch), resume from ListParts, download
by presigned GET, and the sweep deletes the object from the bucket."""

# ruff: noqa: F811 (the seaweed fixture imported from seaweed.py is a parameter here)

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from porch.server.media.base import BlobMissing
from porch.server.media.s3 import S3Blobs
from tests.integration.conftest import register
from tests.integration.media_http import MediaHttp, sha256
from tests.integration.seaweed import Seaweed, seaweed  # noqa: F401 (fixture)
from tests.integration.server import ServerProcess

PART = 5 << 20  # S3's minimum part size


def start(tmp_path: Path, store: Seaweed, bucket: str, **env: str) -> ServerProcess:
    srv = ServerProcess(
        tmp_path / "server-data",
        env={**store.env(bucket), "PORCH_MEDIA_PART_BYTES": str(PART), **env},
    )
    srv.start()
    return srv


@pytest.fixture
def bucket() -> str:
    return f"porch-{secrets.token_hex(4)}"


@pytest.fixture
def server(tmp_path: Path, seaweed: Seaweed, bucket: str) -> Iterator[ServerProcess]:
    srv = start(tmp_path, seaweed, bucket)
    yield srv
    srv.stop()


@pytest.fixture
async def alice(server: ServerProcess, tmp_path: Path) -> AsyncIterator[MediaHttp]:
    http = MediaHttp(server, await register(server, tmp_path / "alice"))
    yield http
    await http.aclose()


async def test_upload_in_parts_and_download(
    alice: MediaHttp,
    seaweed: Seaweed,
    bucket: str,
    server: ServerProcess,
) -> None:
    blob = os.urandom(2 * PART + 1234)
    slot = await alice.slot(len(blob))
    assert slot["part_size"] == PART and len(slot["parts"]) == 3
    # The bytes go to the object store itself, by its presigned URLs.
    assert all(p["url"].startswith(f"{seaweed.endpoint}/{bucket}/") for p in slot["parts"])
    etags = await alice.put_parts(slot, blob)
    assert bucket in [b["Name"] for b in seaweed.client().list_buckets()["Buckets"]]
    await alice.complete(slot["id"], etags)
    assert seaweed.objects(bucket) == [slot["id"]]
    assert sha256(await alice.fetch(slot["id"])) == sha256(blob)
    # Porch's own part route is the filesystem backend's: not there with S3.
    r = await alice.plain.put(f"{server.url}/v1/media/parts/{slot['id']}/1?exp=1&sig=x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "media_not_found"


async def test_resume_lists_the_parts_the_store_holds(alice: MediaHttp) -> None:
    blob = os.urandom(PART + 10)
    slot = await alice.slot(len(blob))
    await alice.put_parts(slot, blob, only={2})
    status = await alice.ok("GET", f"/v1/media/uploads/{slot['id']}")
    assert status["received"] == [2] and [p["n"] for p in status["parts"]] == [1]
    error = await alice.refused(
        "POST",
        f"/v1/media/uploads/{slot['id']}/complete",
        409,
        "media_incomplete",
        json={"parts": []},
    )
    assert error["missing"] == [1]
    etags = await alice.put_parts(status, blob)
    await alice.complete(slot["id"], etags)
    assert await alice.fetch(slot["id"]) == blob


async def test_an_abandoned_upload_is_aborted_in_the_bucket(
    alice: MediaHttp, seaweed: Seaweed, bucket: str
) -> None:
    blob = os.urandom(PART + 10)
    slot = await alice.slot(len(blob))
    await alice.put_parts(slot, blob, only={1})
    assert seaweed.uploads(bucket) == [slot["id"]]
    await alice.ok("DELETE", f"/v1/media/uploads/{slot['id']}", 204)
    assert seaweed.uploads(bucket) == [] and seaweed.objects(bucket) == []
    await alice.refused("GET", f"/v1/media/uploads/{slot['id']}", 404, "media_not_found")


async def test_expired_blob_is_deleted_from_the_bucket(
    tmp_path: Path,
    seaweed: Seaweed,
    bucket: str,
) -> None:
    srv = start(
        tmp_path,
        seaweed,
        bucket,
        PORCH_MEDIA_RETENTION_DAYS=str(3 / 86_400),
        PORCH_SWEEP_INTERVAL_SECONDS="0.5",
    )
    try:
        alice = MediaHttp(srv, await register(srv, tmp_path / "alice"))
        media_id = await alice.upload(os.urandom(1000))
        grant = await alice.ok("GET", f"/v1/media/{media_id}")
        assert seaweed.objects(bucket) == [media_id]
        deadline = time.monotonic() + 20
        while seaweed.objects(bucket) and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        assert seaweed.objects(bucket) == []
        await alice.refused("GET", f"/v1/media/{media_id}", 404, "media_not_found")
        async with httpx.AsyncClient() as plain:
            assert (await plain.get(grant["url"])).status_code == 404  # the store's own 404
        await alice.aclose()
    finally:
        srv.stop()


async def test_an_unfinished_upload_is_aborted_on_delete(seaweed: Seaweed, bucket: str) -> None:
    # What the sweep does with a slot that was never completed (services/media.py sweep):
    # the multipart upload and its parts go, and the store says the upload is gone.
    blobs = S3Blobs(seaweed.endpoint, bucket, "us-east-1", seaweed.access_key, seaweed.secret_key)
    media_id = "U" * 22
    async with blobs:
        upload = await blobs.create_upload(media_id, 10, PART)
        url = await blobs.part_url(media_id, upload, 1, 10, int(time.time() * 1000) + 60_000)
        async with httpx.AsyncClient() as plain:
            assert (await plain.put(url, content=b"0123456789")).status_code == 200
        assert [p.n for p in await blobs.received_parts(media_id, upload)] == [1]
        assert seaweed.uploads(bucket) == [media_id]
        await blobs.delete(media_id, upload)
        assert seaweed.uploads(bucket) == []
        with pytest.raises(BlobMissing):
            await blobs.received_parts(media_id, upload)
        await blobs.delete(media_id, upload)  # gone already: fine
