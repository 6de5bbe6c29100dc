"""The filesystem backend on a real directory: parts at their offsets, a part counted only
when whole, completion checks, nothing partial ever at a blob's path, deletion."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from porch.server.media.base import (
    BlobMissing,
    PartsMismatch,
    PartTooLong,
    PartTooShort,
    StorageFull,
)
from porch.server.media.filesystem import FilesystemBlobs
from porch.server.media.signing import UrlSigner

MEDIA_ID = "AbCdEfGhIjKlMnOpQrStUv"
PART = 1000


async def _key() -> bytes:
    return b"k" * 32


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[FilesystemBlobs]:
    async with FilesystemBlobs(tmp_path / "media", UrlSigner(_key)) as b:
        yield b


async def chunks(data: bytes, size: int = 300) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def spans(size: int) -> list[tuple[int, int]]:
    return [(n + 1, min(PART, size - n * PART)) for n in range(-(-size // PART))]


async def test_parts_in_any_order_make_the_blob(blobs: FilesystemBlobs, tmp_path: Path) -> None:
    data = os.urandom(2 * PART + 123)
    assert await blobs.create_upload(MEDIA_ID, len(data), PART) == ""
    etags = {}
    for n, length in reversed(spans(len(data))):
        offset = (n - 1) * PART
        etags[n] = await blobs.write_part(
            MEDIA_ID, n, offset, length, chunks(data[offset : offset + length])
        )
    assert [p.n for p in await blobs.received_parts(MEDIA_ID, "")] == [1, 2, 3]
    with pytest.raises(BlobMissing):  # not a blob until complete
        blobs.open_blob(MEDIA_ID)
    await blobs.complete(MEDIA_ID, "", spans(len(data)), etags)
    blob = blobs.open_blob(MEDIA_ID)
    assert blob.size == len(data) and blob.path.read_bytes() == data
    assert not (tmp_path / "media" / "uploads" / MEDIA_ID).exists()
    await blobs.complete(MEDIA_ID, "", spans(len(data)), etags)  # again: nothing to do
    url = await blobs.download_url(MEDIA_ID, 123)
    assert url.startswith(f"/v1/media/blobs/{MEDIA_ID}?exp=123&sig=")


async def test_a_part_counts_only_when_whole(blobs: FilesystemBlobs) -> None:
    data = os.urandom(2 * PART)
    await blobs.create_upload(MEDIA_ID, len(data), PART)
    with pytest.raises(PartTooShort):
        await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(data[: PART - 1]))
    with pytest.raises(PartTooLong):
        await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(data[: PART + 1]))
    assert await blobs.received_parts(MEDIA_ID, "") == []
    first = await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(data[:PART]))
    # Part 2 is not there yet; a wrong etag for part 1 is refused too.
    with pytest.raises(PartsMismatch) as missing:
        await blobs.complete(MEDIA_ID, "", spans(len(data)), {1: first})
    assert missing.value.missing == (2,)
    with pytest.raises(PartsMismatch) as wrong:
        await blobs.complete(MEDIA_ID, "", spans(len(data)), {1: '"beef"'})
    assert 1 in wrong.value.missing
    # A re-sent part stops counting the moment it starts, and counts again when whole.
    with pytest.raises(PartTooShort):
        await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(data[:10]))
    assert await blobs.received_parts(MEDIA_ID, "") == []


async def test_a_too_long_part_writes_nothing_past_itself(blobs: FilesystemBlobs) -> None:
    data = os.urandom(2 * PART)
    await blobs.create_upload(MEDIA_ID, len(data), PART)
    await blobs.write_part(MEDIA_ID, 2, PART, PART, chunks(data[PART:]))
    with pytest.raises(PartTooLong):
        await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(b"\xff" * (PART + 500), PART + 500))
    etag1 = await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(data[:PART]))
    received = {p.n: p.etag for p in await blobs.received_parts(MEDIA_ID, "")}
    await blobs.complete(MEDIA_ID, "", spans(len(data)), {1: etag1, 2: received[2]})
    assert blobs.open_blob(MEDIA_ID).path.read_bytes() == data


async def test_delete_removes_uploads_and_blobs(blobs: FilesystemBlobs, tmp_path: Path) -> None:
    await blobs.create_upload(MEDIA_ID, 10, PART)
    await blobs.delete(MEDIA_ID, "")
    with pytest.raises(BlobMissing):
        await blobs.received_parts(MEDIA_ID, "")
    with pytest.raises(BlobMissing):
        await blobs.write_part(MEDIA_ID, 1, 0, 10, chunks(b"x" * 10))
    await blobs.delete(MEDIA_ID, None)  # gone already: fine
    leftovers = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.parametrize("bad", ["../../../../etc/passwd", "A" * 21, "a/b" + "c" * 19])
async def test_paths_come_only_from_valid_ids(blobs: FilesystemBlobs, bad: str) -> None:
    with pytest.raises(BlobMissing):
        await blobs.create_upload(bad, 10, PART)
    with pytest.raises(BlobMissing):
        blobs.open_blob(bad)


async def test_a_fresh_slot_holds_no_disk_blocks(blobs: FilesystemBlobs, tmp_path: Path) -> None:
    # A slot must not reserve its size: 16 empty slots at the limit would pin gigabytes.
    size = 100 * 1024 * 1024
    await blobs.create_upload(MEDIA_ID, size, 8 << 20)
    data = tmp_path / "media" / "uploads" / MEDIA_ID / "data"
    assert data.stat().st_size == size
    assert data.stat().st_blocks * 512 < 64 * 1024  # (almost) nothing allocated
    # Blocks come as a part's bytes arrive, and only that part's worth.
    await blobs.write_part(MEDIA_ID, 1, 0, PART * 64, chunks(os.urandom(PART * 64), 4096))
    assert 0 < data.stat().st_blocks * 512 < PART * 64 + 64 * 1024


async def test_a_full_disk_fails_the_part_not_the_server(
    blobs: FilesystemBlobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk cannot be made here: os.pwrite is made to fail as the kernel would.
    await blobs.create_upload(MEDIA_ID, PART, PART)

    def full(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(StorageFull):
        await blobs.write_part(MEDIA_ID, 1, 0, PART, chunks(os.urandom(PART)))
    monkeypatch.undo()
    assert await blobs.received_parts(MEDIA_ID, "") == []  # not counted
