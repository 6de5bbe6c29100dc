"""Attachments end to end with the S3 backend on a real SeaweedFS (tests/integration/seaweed.py):
the SDK's parts and downloads go to the object store's presigned URLs, never through Porch."""

# ruff: noqa: F811 (the seaweed fixture imported from seaweed.py is a parameter here)

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from porch.client.errors import AttachmentRejected, ServerError
from tests.integration.conftest import register
from tests.integration.seaweed import Seaweed, seaweed  # noqa: F401 (fixture)
from tests.integration.server import ServerProcess
from tests.integration.test_media_e2e import deliver, fetch, round_trip
from tests.integration.test_media_s3 import bucket, server, start  # noqa: F401 (fixtures)


@pytest.mark.slow
async def test_a_large_file_round_trips_through_the_bucket(
    server: ServerProcess, tmp_path: Path, seaweed: Seaweed, bucket: str
) -> None:
    media_id = await round_trip(server, tmp_path, 50_000_000)
    assert seaweed.objects(bucket) == [media_id]


async def test_an_overwritten_object_is_refused(
    server: ServerProcess, tmp_path: Path, seaweed: Seaweed, bucket: str
) -> None:
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    payload = tmp_path / "report.pdf"
    payload.write_bytes(os.urandom(300_000))
    async with alice, bob:
        m = await deliver(alice, bob, payload)
        key = m.attachments[0].id
        s3 = seaweed.client()
        blob = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        blob[-1] ^= 0x80  # the MAC's last byte
        s3.put_object(Bucket=bucket, Key=key, Body=bytes(blob))
        with pytest.raises(AttachmentRejected):
            await fetch(bob, m)
        assert [p for p in bob.downloads_dir.rglob("*") if p.is_file()] == []


async def test_the_bucket_holds_no_plaintext_and_an_expired_object_goes(
    tmp_path: Path, seaweed: Seaweed, bucket: str
) -> None:
    srv = start(
        tmp_path,
        seaweed,
        bucket,
        PORCH_MEDIA_RETENTION_DAYS=str(6 / 86_400),
        PORCH_SWEEP_INTERVAL_SECONDS="0.5",
    )
    pattern = b"PORCH-PLAINTEXT-CANARY-32-BYTES!"
    try:
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        payload = tmp_path / "canary.bin"
        payload.write_bytes(pattern * 10_000)
        async with alice, bob:
            m = await deliver(alice, bob, payload)
            s3 = seaweed.client()
            for key in seaweed.objects(bucket):
                assert pattern[:16] not in s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            saved = await fetch(bob, m)
            assert saved.read_bytes() == payload.read_bytes()
            saved.unlink()  # gone here too: the next download asks the server again
            deadline = time.monotonic() + 20
            while seaweed.objects(bucket) and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
            assert seaweed.objects(bucket) == []
            with pytest.raises(ServerError) as err:
                await fetch(bob, m)
            assert err.value.code == "media_not_found"
    finally:
        srv.stop()
