"""The download engine: verify before decrypt, resume with Range, refusals leave nothing."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from porch.client.api import HttpApi
from porch.client.errors import AttachmentRejected, ServerError, ServerUnreachable
from porch.client.media_api import MediaApi
from porch.client.media_download import PARTIAL_DIR, fetch
from porch.crypto.attachment import encrypt_attachment
from porch.crypto.content import Attachment
from tests.unit.client.media_server import BASE, MediaServer


def _stored(server: MediaServer, data: bytes, name: str | None = "photo.jpg") -> Attachment:
    blob, key, digest = encrypt_attachment(data)
    media_id = "A" * 21 + str(len(server.blobs))
    server.blobs[media_id] = blob
    return Attachment(media_id, key, digest, len(data), "image/jpeg", name=name)


async def _fetch(server: MediaServer, pointer: Attachment, dest: Path, **kw):  # type: ignore[no-untyped-def]
    transport = server.transport()
    api = HttpApi(BASE, transport=transport)
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            return await fetch(MediaApi(api), http, pointer, dest, sleep=lambda _: None, **kw)
    finally:
        await api.aclose()


def _files(dest: Path) -> list[str]:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


async def test_round_trip_with_progress(tmp_path: Path) -> None:
    server, data = MediaServer(), os.urandom(3_000_000)
    pointer = _stored(server, data)
    seen: list[tuple[int, int]] = []
    path = await _fetch(server, pointer, tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert path == tmp_path / "photo.jpg" and path.read_bytes() == data
    assert seen[-1][0] == seen[-1][1] == len(server.blobs[pointer.id])
    assert _files(tmp_path) == ["photo.jpg"]  # the partial ciphertext is gone


async def test_a_dropped_download_resumes_with_range(tmp_path: Path) -> None:
    server, data = MediaServer(), os.urandom(500_000)
    pointer = _stored(server, data)
    server.drop_get_after = 123_456
    path = await _fetch(server, pointer, tmp_path)
    assert path.read_bytes() == data
    assert server.ranges == [None, "bytes=123456-"]


@pytest.mark.parametrize("where", [0, 16, 5000, -1])  # iv, ciphertext, MAC
async def test_a_tampered_blob_is_refused_and_nothing_is_saved(tmp_path: Path, where: int) -> None:
    server, data = MediaServer(), os.urandom(10_000)
    pointer = _stored(server, data)
    blob = bytearray(server.blobs[pointer.id])
    blob[where] ^= 1
    server.blobs[pointer.id] = bytes(blob)
    with pytest.raises(AttachmentRejected) as err:
        await _fetch(server, pointer, tmp_path)
    assert err.value.code == "attachment_tampered"
    assert "it was not saved" in str(err.value)
    assert _files(tmp_path) == []


async def test_a_blob_of_another_length_is_refused(tmp_path: Path) -> None:
    server, data = MediaServer(), os.urandom(10_000)
    pointer = _stored(server, data)
    server.blobs[pointer.id] += b"x" * 16
    with pytest.raises(AttachmentRejected):
        await _fetch(server, pointer, tmp_path)
    assert _files(tmp_path) == []


async def test_gone_from_the_server_says_ask_again(tmp_path: Path) -> None:
    server = MediaServer()
    pointer = _stored(server, b"hello")
    del server.blobs[pointer.id]
    with pytest.raises(ServerError) as err:
        await _fetch(server, pointer, tmp_path)
    assert err.value.code == "media_not_found"
    assert "ask the sender to send it again" in str(err.value)


async def test_same_name_twice_is_deduplicated_and_names_are_made_safe(tmp_path: Path) -> None:
    server = MediaServer()
    first = await _fetch(server, _stored(server, b"one"), tmp_path)
    second = await _fetch(server, _stored(server, b"two"), tmp_path)
    assert (first.name, second.name) == ("photo.jpg", "photo (1).jpg")
    assert not (tmp_path / PARTIAL_DIR).exists()  # nothing half-done: no empty folder left
    hostile = await _fetch(server, _stored(server, b"x", name="../../.bashrc\u202e"), tmp_path)
    assert hostile.parent == tmp_path and hostile.name == "bashrc"
    nameless = await _fetch(server, _stored(server, b"x", name=None), tmp_path)
    assert nameless.name.startswith("attachment-AAAAAAAA") and nameless.suffix == ".jpg"


async def test_a_partial_left_by_a_crash_is_resumed(tmp_path: Path) -> None:
    server, data = MediaServer(), os.urandom(100_000)
    pointer = _stored(server, data)
    partial = tmp_path / PARTIAL_DIR / pointer.id
    partial.parent.mkdir()
    partial.write_bytes(server.blobs[pointer.id][:40_000])
    path = await _fetch(server, pointer, tmp_path)
    assert path.read_bytes() == data
    assert server.ranges == ["bytes=40000-"]


async def test_a_torn_partial_is_fetched_again_from_scratch_once(tmp_path: Path) -> None:
    server, data = MediaServer(), os.urandom(100_000)
    pointer = _stored(server, data)
    partial = tmp_path / PARTIAL_DIR / pointer.id
    partial.parent.mkdir()
    torn = bytearray(server.blobs[pointer.id][:40_000])
    torn[20_000] ^= 1  # a crash left a damaged byte in the partial
    partial.write_bytes(bytes(torn))
    path = await _fetch(server, pointer, tmp_path)
    assert path.read_bytes() == data
    assert server.ranges == ["bytes=40000-", None]  # resumed, then once from the first byte


async def test_a_tampered_blob_with_a_partial_is_refused_after_one_fresh_try(
    tmp_path: Path,
) -> None:
    server, data = MediaServer(), os.urandom(100_000)
    pointer = _stored(server, data)
    blob = bytearray(server.blobs[pointer.id])
    blob[-1] ^= 1
    server.blobs[pointer.id] = bytes(blob)
    partial = tmp_path / PARTIAL_DIR / pointer.id
    partial.parent.mkdir()
    partial.write_bytes(bytes(blob[:40_000]))
    with pytest.raises(AttachmentRejected) as err:
        await _fetch(server, pointer, tmp_path)
    assert err.value.code == "attachment_tampered"
    assert server.ranges == ["bytes=40000-", None]
    assert _files(tmp_path) == []


async def test_an_expired_url_is_asked_again_and_a_server_that_keeps_refusing_ends_it(
    tmp_path: Path,
) -> None:
    server, data = MediaServer(), os.urandom(1000)
    pointer = _stored(server, data)
    server.refuse_blob = 1  # the first signed URL answers 403 (expired): a fresh one works
    assert (await _fetch(server, pointer, tmp_path)).read_bytes() == data
    pointer = _stored(server, data)
    server.refuse_blob = 100
    with pytest.raises(ServerUnreachable, match="failed 6 times"):
        await _fetch(server, pointer, tmp_path)


async def test_a_size_past_the_wire_bound_is_refused_before_any_request(tmp_path: Path) -> None:
    server = MediaServer()
    pointer = replace(_stored(server, b"x"), size=2**41)
    with pytest.raises(AttachmentRejected) as err:
        await _fetch(server, pointer, tmp_path)
    assert err.value.code == "attachment_invalid" and server.ranges == []


async def test_a_server_without_range_support_restarts_from_the_first_byte(tmp_path: Path) -> None:
    server, data = MediaServer(), os.urandom(300_000)
    pointer = _stored(server, data)
    server.drop_get_after, server.ignore_range = 100_000, True
    assert (await _fetch(server, pointer, tmp_path)).read_bytes() == data
    assert server.ranges == [None, "bytes=100000-"]  # asked for the rest, got it all again
