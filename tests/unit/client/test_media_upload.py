"""The upload engine against the in-memory media API: parts, resume, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest

from porch.client import media_upload
from porch.client.api import HttpApi
from porch.client.errors import ServerError, ServerUnreachable
from porch.client.media_api import MediaApi
from porch.client.media_blob import BlobSource
from porch.client.media_http import MAX_ATTEMPTS
from porch.client.media_upload import upload
from porch.crypto.attachment import blob_size, decrypt_attachment, new_key
from tests.unit.client.media_server import BASE, MediaServer

PART = 256 << 10


def _file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    return path, data


async def _upload(server: MediaServer, path: Path, size: int, key: bytes, **kw):  # type: ignore[no-untyped-def]
    transport = server.transport()
    api = HttpApi(BASE, transport=transport)
    source = BlobSource(path, size, key)
    async with httpx.AsyncClient(transport=transport) as http:
        try:
            return await upload(MediaApi(api), http, source, sleep=lambda _: None, **kw), source
        finally:
            source.close()
            await api.aclose()


async def test_parts_arrive_in_order_and_the_blob_decrypts(tmp_path: Path) -> None:
    size = 3 * PART + 1000
    path, data = _file(tmp_path, size)
    server, key, seen = MediaServer(PART), new_key(), []
    done, _ = await _upload(
        server, path, size, key, recipients=3, progress=lambda d, t: seen.append((d, t))
    )
    blob = server.blobs[done.media_id]
    assert len(blob) == blob_size(size) == done.blob_bytes
    assert hashlib.sha256(blob).digest() == done.digest
    assert decrypt_attachment(blob, key, done.digest, size) == data
    assert server.puts == [1, 2, 3, 4]
    assert server.uploads[done.media_id].recipients == 3
    assert seen[-1] == (len(blob), len(blob))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


async def test_a_part_dropped_midway_is_resent_alone_from_its_snapshot(tmp_path: Path) -> None:
    part = 3 << 20  # parts of three 1 MiB chunks: the drop happens after the first chunk
    size = 4 * part
    path, data = _file(tmp_path, size)
    server, key = MediaServer(part), new_key()
    server.drop_put = (3, (1 << 20) + 10)
    done, source = await _upload(server, path, size, key)
    # Parts 1 and 2 once, part 3 twice (the drop, then the resend), then the rest.
    assert server.puts == [1, 2, 3, 3, 4, 5]
    assert source.restarts == 2  # the first pass, then one resume at part 3's snapshot
    blob = server.blobs[done.media_id]
    assert decrypt_attachment(blob, key, done.digest, size) == data


async def test_5xx_answers_are_retried_then_give_up(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, 1000)
    server = MediaServer(PART)
    server.fail_status = [503, 502]
    done, _ = await _upload(server, path, 1000, new_key())
    assert server.puts == [1, 1, 1]
    assert done.media_id in server.blobs

    server.fail_status = [500] * MAX_ATTEMPTS
    with pytest.raises(ServerUnreachable, match="nothing was sent"):
        await _upload(server, path, 1000, new_key())
    # Failed for good: the slot is given up rather than held as pending for a day.
    assert len(server.abandoned) == 1 and server.abandoned[0] not in server.uploads
    assert list(server.uploads) == [done.media_id]


async def test_a_cancelled_upload_gives_its_slot_up(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, 2 * PART)
    server = MediaServer(PART)
    server.hang_put = 2
    task = asyncio.create_task(_upload(server, path, 2 * PART, new_key()))
    while server.puts != [1, 2]:
        await asyncio.sleep(0.01)
    task.cancel()  # what Ctrl-C does to the CLI's task
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(server.abandoned) == 1 and server.uploads == {}


async def test_giving_up_is_bounded_and_never_hides_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media_upload, "ABANDON_SECONDS", 0.2)
    path, _ = _file(tmp_path, 1000)
    server = MediaServer(PART)
    server.fail_status = [500] * MAX_ATTEMPTS
    server.hang_delete = True  # the server stopped answering
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match="nothing was sent"):
        await _upload(server, path, 1000, new_key())
    assert time.monotonic() - started < 2
    assert server.abandoned == [] and len(server.uploads) == 1


async def test_too_large_is_refused_before_any_part_in_the_files_words(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, 2 * PART)
    server = MediaServer(PART, max_blob=PART)
    with pytest.raises(ServerError) as err:
        await _upload(server, path, 2 * PART, new_key())
    assert err.value.code == "media_too_large"
    assert str(err.value).startswith(
        "the file is 524.3 kB; this server accepts attachments up to 250 kB; send"
    )
    assert server.puts == [] and server.uploads == {}


async def test_a_file_that_shrinks_while_sent_stops_the_upload(tmp_path: Path) -> None:
    from porch.client.errors import MediaError

    path, _ = _file(tmp_path, 2 * PART)
    server = MediaServer(PART)
    source = BlobSource(path, 3 * PART, new_key())  # the file is shorter than announced
    api = HttpApi(BASE, transport=server.transport())
    async with httpx.AsyncClient(transport=server.transport()) as http:
        with pytest.raises(MediaError, match="got shorter"):
            await upload(MediaApi(api), http, source, sleep=lambda _: None)
    await api.aclose()
    assert all(not up.done for up in server.uploads.values())
