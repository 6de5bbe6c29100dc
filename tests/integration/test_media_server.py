"""Server media over raw HTTP against a real server (spec §6), filesystem backend, on SQLite
and PostgreSQL: parts and completion, signed URLs refused when forged, expired, reused on
another path or after completion, the size limit before any byte is stored, resume,
ownership, and expiry by the sweep (bytes gone from disk, URLs answering 404)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from porch.crypto.attachment import blob_size
from tests.integration.media_http import MediaHttp, running_server, sha256
from tests.integration.server import ServerProcess

PART = 64 * 1024
MAX_PLAIN = 1_000_000
PENDING = 3
ENV = {
    "PORCH_MEDIA_PART_BYTES": str(PART),
    "PORCH_MEDIA_MAX_BYTES": str(MAX_PLAIN),
    "PORCH_MEDIA_MAX_PENDING_UPLOADS": str(PENDING),
}


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, {**server_env, **ENV}) as srv:
        yield srv


@pytest.fixture
async def pair(
    server: ServerProcess, register_client
) -> AsyncIterator[tuple[MediaHttp, MediaHttp]]:  # type: ignore[no-untyped-def]
    alice, bob = (
        MediaHttp(server, await register_client()),
        MediaHttp(server, await register_client()),
    )
    yield alice, bob
    await alice.aclose()
    await bob.aclose()


def media_files(server: ServerProcess) -> list[Path]:
    root = server.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_upload_in_parts_and_download(pair: tuple[MediaHttp, MediaHttp]) -> None:
    alice, bob = pair
    blob = os.urandom(3 * PART + 3392)
    slot = await alice.slot(len(blob), recipients=2)
    assert [p["n"] for p in slot["parts"]] == [1, 2, 3, 4]
    assert slot["part_size"] == PART and slot["size"] == len(blob) and slot["received"] == []
    assert len(slot["id"]) == 22 and slot["expires"] <= slot["slot_expires"]
    # Out of order, as parallel uploads arrive.
    etags = {}
    for part in reversed(slot["parts"]):
        n = part["n"]
        r = await alice.put(part["url"], blob[(n - 1) * PART : n * PART])
        assert r.status_code == 200, r.text
        etags[n] = r.headers["etag"]
    assert len(set(etags.values())) == 4
    # Not downloadable before completion.
    await bob.refused("GET", f"/v1/media/{slot['id']}", 404, "media_not_found")
    done = await alice.complete(slot["id"], etags)
    assert done["id"] == slot["id"] and done["size"] == len(blob)
    assert done["expires"] > time.time() * 1000 + 29 * 86_400_000
    # A retried completion answers the same.
    assert await alice.complete(slot["id"], etags) == done

    assert sha256(await bob.fetch(slot["id"])) == sha256(blob)
    grant = await bob.ok("GET", f"/v1/media/{slot['id']}")
    ranged = await bob.plain.get(bob.url(grant["url"]), headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == blob[100:200]
    # The blob URL's signature covers its path: it opens no other blob.
    other = await alice.upload(os.urandom(1000))
    forged = grant["url"].replace(slot["id"], other)
    r = await bob.plain.get(bob.url(forged))
    assert r.status_code == 403 and r.json()["error"]["code"] == "media_url_invalid"


async def test_part_urls_refused(pair: tuple[MediaHttp, MediaHttp]) -> None:
    alice, _ = pair
    blob = os.urandom(PART + 10)
    slot = await alice.slot(len(blob))
    url1, url2 = slot["parts"][0]["url"], slot["parts"][1]["url"]
    query = parse_qs(urlsplit(url1).query)
    path1, path2 = urlsplit(url1).path, urlsplit(url2).path
    sig, exp = query["sig"][0], int(query["exp"][0])

    async def refused(url: str, data: bytes, status: int, code: str) -> None:
        r = await alice.put(url, data)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code

    part1 = blob[:PART]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    await refused(f"{path1}?exp={exp}&sig={flipped}", part1, 403, "media_url_invalid")
    await refused(f"{path1}?exp={exp + 1}&sig={sig}", part1, 403, "media_url_invalid")
    await refused(
        f"{path1}?exp={int(time.time() * 1000) - 1}&sig={sig}", part1, 403, "media_url_invalid"
    )
    await refused(f"{path1}", part1, 403, "media_url_invalid")
    await refused(f"{path2}?exp={exp}&sig={sig}", blob[PART:], 403, "media_url_invalid")
    await refused(url1, part1 + b"x", 413, "request_too_large")
    await refused(url1, part1[:-1], 400, "bad_request")
    # The part PUT is exempt from the 256 KiB body limit only on its own path.
    r = await alice.http.put("/v1/devices/list", content=b"x" * (300 * 1024))
    assert r.status_code == 413

    etags = await alice.put_parts(slot, blob)
    await alice.complete(slot["id"], etags)
    await refused(url1, part1, 409, "media_upload_done")
    status = await alice.call("GET", f"/v1/media/uploads/{slot['id']}")
    assert status[0] == 409 and status[1]["error"]["code"] == "media_upload_done"


async def test_over_the_limit_is_refused_before_anything_is_stored(
    server: ServerProcess, pair: tuple[MediaHttp, MediaHttp]
) -> None:
    alice, _ = pair
    limit = blob_size(MAX_PLAIN)
    error = await alice.refused(
        "POST", "/v1/media/uploads", 413, "media_too_large", json={"size": limit + 1}
    )
    assert error["limit"] == limit and "accepts attachments up to 1 MB" in error["message"]
    assert media_files(server) == []
    await alice.refused("POST", "/v1/media/uploads", 400, "bad_request", json={"size": 0})
    await alice.refused(
        "POST", "/v1/media/uploads", 400, "bad_request", json={"size": 10, "recipients": 5001}
    )
    slot = await alice.slot(limit)  # exactly the limit is fine
    assert len(slot["parts"]) == -(-limit // PART)


async def test_resume_puts_only_the_missing_parts(pair: tuple[MediaHttp, MediaHttp]) -> None:
    alice, bob = pair
    blob = os.urandom(3 * PART + 5)
    slot = await alice.slot(len(blob))
    first = await alice.put_parts(slot, blob, only={1, 3})
    status = await alice.ok("GET", f"/v1/media/uploads/{slot['id']}")
    assert status["received"] == [1, 3]
    assert [p["n"] for p in status["parts"]] == [2, 4]
    error = await alice.refused(
        "POST",
        f"/v1/media/uploads/{slot['id']}/complete",
        409,
        "media_incomplete",
        json={"parts": [{"n": n, "etag": e} for n, e in first.items()]},
    )
    assert error["missing"] == [2, 4]
    # A wrong etag is refused too.
    error = await alice.refused(
        "POST",
        f"/v1/media/uploads/{slot['id']}/complete",
        409,
        "media_incomplete",
        json={"parts": [{"n": 1, "etag": '"00"'}]},
    )
    assert 1 in error["missing"]
    # The fresh URLs take the rest; completion needs no etags for parts the server holds.
    rest = await alice.put_parts(status, blob)
    assert set(rest) == {2, 4}
    await alice.complete(slot["id"], rest)
    assert await bob.fetch(slot["id"]) == blob


async def test_another_accounts_upload_is_not_found(pair: tuple[MediaHttp, MediaHttp]) -> None:
    alice, bob = pair
    slot = await alice.slot(100)
    media_id = slot["id"]
    await bob.refused("GET", f"/v1/media/uploads/{media_id}", 404, "media_not_found")
    await bob.refused(
        "POST", f"/v1/media/uploads/{media_id}/complete", 404, "media_not_found", json={"parts": []}
    )
    unknown = "A" * 22
    await bob.refused("GET", f"/v1/media/uploads/{unknown}", 404, "media_not_found")
    error = await bob.refused("GET", f"/v1/media/{unknown}", 404, "media_not_found")
    assert "ask the sender to send it again" in error["message"]
    await bob.refused("GET", "/v1/media/not-an-id", 400, "bad_request")
    r = await bob.plain.get(bob.url(f"/v1/media/uploads/{media_id}"))
    assert r.status_code == 401


async def test_pending_slots_are_capped(pair: tuple[MediaHttp, MediaHttp]) -> None:
    alice, bob = pair
    slots = [await alice.slot(100) for _ in range(PENDING)]
    error = await alice.refused("POST", "/v1/media/uploads", 429, "media_pending", json={"size": 1})
    assert error["limit"] == PENDING
    await bob.slot(100)  # per account
    # Finishing one frees its place.
    first = slots[0]
    await alice.complete(first["id"], await alice.put_parts(first, os.urandom(100)))
    await alice.slot(100)


async def test_an_abandoned_upload_frees_its_slot_and_its_bytes(
    server: ServerProcess, pair: tuple[MediaHttp, MediaHttp]
) -> None:
    alice, bob = pair
    slots = [await alice.slot(2 * PART) for _ in range(PENDING)]
    first = slots[0]
    await alice.put_parts(first, os.urandom(2 * PART), only={1})
    assert media_files(server)  # the first part is on disk
    path = f"/v1/media/uploads/{first['id']}"
    await bob.refused("DELETE", path, 404, "media_not_found")  # the uploader's only
    await alice.ok("GET", path)  # ... and bob's attempt changed nothing
    assert await alice.ok("DELETE", path, 204) is None
    assert not any(first["id"] in str(p) for p in media_files(server))
    await alice.refused("GET", path, 404, "media_not_found")
    await alice.refused("DELETE", path, 404, "media_not_found")  # a repeat changes nothing
    r = await alice.put(first["parts"][1]["url"], os.urandom(PART))
    assert r.status_code == 404 and r.json()["error"]["code"] == "media_not_found"
    await alice.slot(100)  # its pending place is free again
    done = slots[1]
    await alice.complete(done["id"], await alice.put_parts(done, os.urandom(2 * PART)))
    await alice.refused("DELETE", f"/v1/media/uploads/{done['id']}", 409, "media_upload_done")
    assert len(await alice.fetch(done["id"])) == 2 * PART


@pytest.fixture
def expiring(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        **ENV,
        "PORCH_MEDIA_RETENTION_DAYS": str(3 / 86_400),
        "PORCH_SWEEP_INTERVAL_SECONDS": "0.5",
    }
    srv = ServerProcess(tmp_path / "server-data", env=env)
    srv.start()
    yield srv
    srv.stop()


async def test_expired_blobs_are_swept_and_their_urls_answer_404(
    expiring: ServerProcess, tmp_path: Path
) -> None:
    from tests.integration.conftest import register

    alice = MediaHttp(expiring, await register(expiring, tmp_path / "alice"))
    try:
        blob = os.urandom(2 * PART)
        media_id = await alice.upload(blob)
        grant = await alice.ok("GET", f"/v1/media/{media_id}")
        blob_file = expiring.data_dir / "media" / "blobs" / media_id[:2] / media_id
        assert blob_file.read_bytes() == blob
        deadline = time.monotonic() + 15
        while blob_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert not blob_file.exists()
        await alice.refused("GET", f"/v1/media/{media_id}", 404, "media_not_found")
        r = await alice.plain.get(alice.url(grant["url"]))
        # The URL outlived the blob: its signature is still good, the blob is gone.
        assert r.status_code == 404 and r.json()["error"]["code"] == "media_not_found"
        assert media_files(expiring) == []
    finally:
        await alice.aclose()


async def test_a_part_cut_off_mid_body_is_not_counted(
    server: ServerProcess, pair: tuple[MediaHttp, MediaHttp]
) -> None:
    alice, _ = pair
    blob = os.urandom(2 * PART)
    slot = await alice.slot(len(blob))
    url = slot["parts"][0]["url"]
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = f"PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {PART}\r\n\r\n"
    writer.write(head.encode() + blob[: PART // 2])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.3)
    status = await alice.ok("GET", f"/v1/media/uploads/{slot['id']}")
    assert status["received"] == [] and [p["n"] for p in status["parts"]] == [1, 2]
    await alice.complete(slot["id"], await alice.put_parts(status, blob))
    assert await alice.fetch(slot["id"]) == blob
    assert "unhandled" not in server.log_path.read_text()


async def test_odd_numbers_in_a_part_url_are_refused_not_crashed(
    pair: tuple[MediaHttp, MediaHttp],
) -> None:
    alice, _ = pair
    slot = await alice.slot(100)
    path = urlsplit(slot["parts"][0]["url"]).path
    for url in (f"{path[:-1]}²?exp=1&sig=x", f"{path}?exp=¹²&sig=x", f"{path[:-1]}-1?exp=1&sig=x"):
        r = await alice.put(url, b"x" * 100)
        assert r.status_code == 403 and r.json()["error"]["code"] == "media_url_invalid", url
