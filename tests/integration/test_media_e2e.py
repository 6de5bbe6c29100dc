"""Attachments end to end over a real server (filesystem backend): Client.send_file on one
device, Client.download on every other (issue 8; spec §5, §6)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from porch.client import Client
from porch.client.errors import AttachmentRejected, ServerError
from porch.client.store import HistoryMessage
from porch.client.transport import NetworkTransport
from tests.integration.conftest import register
from tests.integration.server import ServerProcess
from tests.integration.test_linking import link_second

PART = 64 * 1024
ENV = {"PORCH_MEDIA_PART_BYTES": str(PART), "PORCH_MEDIA_MAX_BYTES": str(60_000_000)}
GPS_IFD = 0x8825


def media_server(tmp_path: Path, **env: str) -> ServerProcess:
    srv = ServerProcess(tmp_path / "server-data", env={**ENV, **env})
    srv.start()
    return srv


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    srv = media_server(tmp_path, **server_env)
    yield srv
    srv.stop()


def media_files(server: ServerProcess) -> list[Path]:
    root = server.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def blob_path(server: ServerProcess, media_id: str) -> Path:
    return server.data_dir / "media" / "blobs" / media_id[:2] / media_id


def with_gps(path: Path, fmt: str) -> Path:
    """A photo whose EXIF carries a camera model and a GPS position (what must not leak)."""
    image = Image.new("RGB", (640, 480))
    image.putdata(
        [((x * 7) % 256, (y * 3) % 256, (x + y) % 256) for y in range(480) for x in range(640)]
    )
    exif = Image.Exif()
    exif[0x0110] = "SpyCam 3000"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (37.0, 46.0, 29.0), 3: "W", 4: (122.0, 25.0, 9.0)})
    image.save(path, fmt, exif=exif)
    assert Image.open(path).getexif().get_ifd(GPS_IFD)  # the test photo really has a position
    return path


async def arrived(client: Client, peer: str, timeout: float = 20) -> HistoryMessage:
    """The newest message with an attachment in the conversation, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in client.history(peer) if m.attachments]
        if found:
            return found[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no attachment arrived in {peer}")


async def deliver(alice: Client, bob: Client, path: Path, **kw: str) -> HistoryMessage:
    """Alice sends the file to Bob; Bob's copy of the message once it arrived."""
    await alice.send_file(bob.account_id, path, **kw)
    return await arrived(bob, alice.account_id)


async def fetch(client: Client, m: HistoryMessage) -> Path:
    return await client.download(m.attachments[0], peer=m.peer, client_id=m.client_id)


@pytest.fixture
async def four(server: ServerProcess, tmp_path: Path) -> AsyncIterator[dict[str, Client]]:
    """Alice with two devices, Bob with two devices, all connected."""
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    async with alice, bob:
        alice2 = await link_second(server, alice, tmp_path / "alice-2")
        bob2 = await link_second(server, bob, tmp_path / "bob-2")
        async with alice2, bob2:
            yield {"alice": alice, "alice2": alice2, "bob": bob, "bob2": bob2}


async def test_photos_reach_every_device_without_exif(
    four: dict[str, Client], tmp_path: Path
) -> None:
    from porch.client import media_prep

    alice, bob = four["alice"], four["bob"]
    jpeg = with_gps(tmp_path / "beach.jpg", "JPEG")
    png = with_gps(tmp_path / "chart.png", "PNG")
    info = await alice.groups.create("trip", [bob.account_id])
    gid = info.id
    sent = await alice.send_file(bob.account_id, jpeg, caption="the beach")
    assert sent.ts > 0
    await alice.send_file(f"g:{gid}", png)
    # What the sender's preparation makes of the JPEG (a re-encode is deterministic).
    prepared = media_prep.prepare(jpeg, tmp_path / "work")
    with Image.open(prepared.path) as im:
        expected_jpeg = im.tobytes()
    with Image.open(png) as im:
        expected_png = im.convert("RGB").tobytes()

    for name, peer, group_peer in (
        ("bob", alice.account_id, f"g:{gid}"),
        ("bob2", alice.account_id, f"g:{gid}"),
        ("alice2", bob.account_id, f"g:{gid}"),
    ):
        client = four[name]
        for conversation, expected, kind in (
            (peer, expected_jpeg, "image/jpeg"),
            (group_peer, expected_png, "image/png"),
        ):
            m = await arrived(client, conversation)
            pointer = m.attachments[0]
            assert pointer.content_type == kind, name
            assert pointer.thumbnail and pointer.blurhash, name
            assert (pointer.width, pointer.height) == (640, 480)
            path = await fetch(client, m)
            assert path.parent == client.downloads_dir
            with Image.open(path) as im:
                assert not im.getexif(), f"{name}: EXIF survived in {path.name}"
                assert im.convert("RGB").tobytes() == expected, name
            assert await fetch(client, m) == path  # a second call returns the saved file
        assert (await arrived(client, peer)).text == "the beach"


@pytest.mark.slow
async def test_a_large_file_round_trips(server: ServerProcess, tmp_path: Path) -> None:
    media_id = await round_trip(server, tmp_path, 50_000_000)
    assert [p.name for p in media_files(server)] == [media_id]


async def round_trip(server: ServerProcess, tmp_path: Path, size: int) -> str:
    """Send a random file of ``size`` bytes and download it; its media id."""
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    data = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with data.open("wb") as f:
        for _ in range(size // (1 << 20)):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
        rest = os.urandom(size % (1 << 20))
        digest.update(rest)
        f.write(rest)
    async with alice, bob:
        m = await deliver(alice, bob, data)
        path = await fetch(bob, m)
    got = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            got.update(chunk)
    assert got.hexdigest() == digest.hexdigest()
    assert path.name == "big.bin"
    return m.attachments[0].id


async def test_a_tampered_blob_is_refused_and_nothing_is_saved(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    payload = tmp_path / "notes.txt"
    payload.write_bytes(os.urandom(200_000))
    async with alice, bob:
        m = await deliver(alice, bob, payload)
        blob = blob_path(server, m.attachments[0].id)
        data = bytearray(blob.read_bytes())
        data[150_000] ^= 0x01
        blob.write_bytes(bytes(data))
        with pytest.raises(AttachmentRejected) as err:
            await fetch(bob, m)
        assert err.value.code == "attachment_tampered"
        left = [p for p in bob.downloads_dir.rglob("*") if p.is_file()]
        assert left == []


async def test_over_the_limit_is_refused_before_bytes_are_stored(tmp_path: Path) -> None:
    srv = media_server(tmp_path, PORCH_MEDIA_MAX_BYTES="100000")
    try:
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        big = tmp_path / "video.bin"
        big.write_bytes(os.urandom(300_000))
        async with alice, bob:
            with pytest.raises(ServerError) as err:
                await alice.send_file(bob.account_id, big)
            assert err.value.code == "media_too_large"
            assert str(err.value).startswith(
                "the file is 300 kB; this server accepts attachments up to 100 kB"
            )
            assert alice.outbox() == []  # nothing was queued
        assert media_files(srv) == []
    finally:
        srv.stop()


class FailOnce(httpx.AsyncBaseTransport):
    """The real network, but the first PUT of part ``part`` breaks halfway through its body,
    as a dropped link does: the server never gets that part."""

    def __init__(self, part: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._part = part
        self.puts: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/v1/media/parts/" in request.url.path:
            n = int(request.url.path.rsplit("/", 1)[-1])
            self.puts.append(n)
            if n == self._part:
                self._part = -1
                sent = 0
                async for chunk in request.stream:  # type: ignore[union-attr]
                    sent += len(chunk)
                    if sent >= PART // 2:
                        break
                raise httpx.WriteError("connection reset by peer")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class FlakyTransport(NetworkTransport):
    def __init__(self, http: httpx.AsyncBaseTransport) -> None:
        super().__init__()
        self._http = http

    def http_transport(self) -> httpx.AsyncBaseTransport | None:
        return self._http


async def test_an_interrupted_upload_resends_only_the_missing_part(
    server: ServerProcess, tmp_path: Path
) -> None:
    await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    flaky = FailOnce(part=3)
    alice = Client(tmp_path / "alice", transport=FlakyTransport(flaky))
    payload = tmp_path / "song.bin"
    payload.write_bytes(os.urandom(5 * PART))
    async with alice, bob:
        m = await deliver(alice, bob, payload)
        assert (await fetch(bob, m)).read_bytes() == payload.read_bytes()
    parts = max(flaky.puts)
    assert parts == 6  # 5 parts of plaintext, and the padding, iv and MAC start a sixth
    assert flaky.puts == [1, 2, 3, 3, 4, 5, 6]


async def test_an_expired_blob_is_swept_and_the_download_says_so(tmp_path: Path) -> None:
    srv = media_server(
        tmp_path, PORCH_MEDIA_RETENTION_DAYS=str(4 / 86_400), PORCH_SWEEP_INTERVAL_SECONDS="0.5"
    )
    try:
        alice = await register(srv, tmp_path / "alice")
        bob = await register(srv, tmp_path / "bob")
        payload = tmp_path / "memo.txt"
        payload.write_text("gone soon\n" * 1000)
        async with alice, bob:
            m = await deliver(alice, bob, payload)
            blob = blob_path(srv, m.attachments[0].id)
            deadline = time.monotonic() + 20
            while blob.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert not blob.exists()
            with pytest.raises(ServerError) as err:
                await fetch(bob, m)
            assert err.value.code == "media_not_found"
            assert "ask the sender to send it again" in str(err.value)
        assert media_files(srv) == []
    finally:
        srv.stop()


async def test_the_server_holds_no_plaintext(server: ServerProcess, tmp_path: Path) -> None:
    pattern = b"PORCH-PLAINTEXT-CANARY-32-BYTES!"
    assert len(pattern) == 32
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    payload = tmp_path / "canary.bin"
    payload.write_bytes(pattern * 20_000)
    async with alice, bob:
        m = await deliver(alice, bob, payload, caption="canary")
        assert (await fetch(bob, m)).read_bytes() == payload.read_bytes()
    files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert any(p in files for p in media_files(server))
    for p in files:
        data = p.read_bytes()
        assert pattern not in data and pattern[:16] not in data, p
        assert b"canary.bin" not in data, p


async def test_forward_reuses_the_pointer(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    carol = await register(server, tmp_path / "carol")
    payload = tmp_path / "doc.pdf"
    payload.write_bytes(os.urandom(100_000))
    async with alice, bob, carol:
        m = await deliver(alice, bob, payload)
        stored = media_files(server)
        await bob.forward(alice.account_id, m.client_id, [carol.account_id])
        f = await arrived(carol, bob.account_id)
        assert f.forwarded
        assert f.attachments[0].id == m.attachments[0].id
        assert media_files(server) == stored  # no second upload
        assert (await fetch(carol, f)).read_bytes() == payload.read_bytes()
