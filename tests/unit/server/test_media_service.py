"""MediaService with a real SQLite store and filesystem backend, and a clock the tests move:
the size limit, the daily quota, the pending-slot cap, the rate limit, ownership, completion,
expiry, download counting and the early delete, and the sweep's order (bytes, then row)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from porch.crypto.attachment import blob_size
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.media.filesystem import FilesystemBlobs
from porch.server.media.signing import UrlSigner
from porch.server.ratelimit import MemoryRateLimiter
from porch.server.services.accounts import Principal
from porch.server.services.media import DAY_MS, MediaService
from porch.server.settings import Settings
from porch.server.store.sqlite import SqliteStore

NOW = 1_700_000_000_000
PART = 64 * 1024
ALICE = Principal("a" * 8, 1)
ALICE_2 = Principal("a" * 8, 2)
BOB = Principal("b" * 8, 1)


@dataclass
class Clock:
    now: int = NOW

    def now_ms(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return self.now / 1000


async def _key() -> bytes:
    return b"k" * 32


class Media:
    """The service and what it stands on, built for one set of settings."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.settings = Settings(
            data_dir=tmp_path,
            media_part_bytes=PART,
            media_max_bytes=1_000_000,
            **settings,
        )
        self.clock = Clock()
        self.store = SqliteStore(tmp_path / "porch.db")
        self.blobs = FilesystemBlobs(self.settings.media_path, UrlSigner(_key))
        self.service = MediaService(
            self.store, self.blobs, MemoryRateLimiter(self.clock), self.clock, self.settings
        )

    def files(self) -> list[Path]:
        return [p for p in self.settings.media_path.rglob("*") if p.is_file()]

    async def upload(self, who: Principal, size: int, recipients: int | None = None) -> str:
        slot = await self.service.create_upload(who, size, recipients)
        data = os.urandom(size)
        for part in slot.parts:
            offset = (part.n - 1) * slot.part_size
            piece = data[offset : offset + slot.part_size]

            async def body(piece: bytes = piece) -> AsyncIterator[bytes]:
                yield piece

            await self.blobs.write_part(slot.id, part.n, offset, len(piece), body())
        await self.service.complete(who, slot.id, [])
        return slot.id


Make = Callable[..., Awaitable[Media]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    async with contextlib.AsyncExitStack() as stack:

        async def factory(**settings: Any) -> Media:
            media = Media(tmp_path, **settings)
            await stack.enter_async_context(media.store)
            await stack.enter_async_context(media.blobs)
            return media

        yield factory


async def refusal(coro: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        await coro
    return err.value


async def test_over_the_size_limit_nothing_is_stored(make: Make) -> None:
    m = await make()
    err = await refusal(m.service.create_upload(ALICE, blob_size(1_000_000) + 1, None))
    assert err.code == ErrorCode.MEDIA_TOO_LARGE and err.details["limit"] == blob_size(1_000_000)
    assert "accepts attachments up to 1 MB" in err.message
    assert m.files() == [] and await m.store.expired_media(NOW + 10 * DAY_MS, 10) == []
    slot = await m.service.create_upload(ALICE, blob_size(1_000_000), None)
    assert len(slot.parts) == -(-blob_size(1_000_000) // PART)


async def test_the_daily_quota_counts_the_last_24_hours(make: Make) -> None:
    m = await make(media_quota_bytes_per_day=3000, media_max_pending_uploads=10)
    for _ in range(3):
        await m.service.create_upload(ALICE, 1000, None)
    err = await refusal(m.service.create_upload(ALICE, 1, None))
    assert err.code == ErrorCode.MEDIA_QUOTA and err.details["used"] == 3000
    await m.service.create_upload(BOB, 3000, None)  # per account
    m.clock.now += DAY_MS
    await m.service.create_upload(ALICE, 3000, None)


async def test_pending_slots_are_capped_until_one_completes(make: Make) -> None:
    m = await make(media_max_pending_uploads=2)
    await m.upload(ALICE, 10)  # complete: not pending
    await m.service.create_upload(ALICE, 10, None)
    await m.service.create_upload(ALICE, 10, None)
    err = await refusal(m.service.create_upload(ALICE, 10, None))
    assert err.code == ErrorCode.MEDIA_PENDING and err.details["limit"] == 2
    m.clock.now += DAY_MS  # the slots expired: they no longer count
    await m.service.create_upload(ALICE, 10, None)


async def test_slot_creation_is_rate_limited(make: Make) -> None:
    m = await make(limit_media_uploads_per_account="2/3600")
    await m.service.create_upload(ALICE, 10, None)
    await m.service.create_upload(ALICE, 10, None)
    err = await refusal(m.service.create_upload(ALICE, 10, None))
    assert err.code == ErrorCode.RATE_LIMITED and "attachment uploads" in err.message
    await m.service.create_upload(BOB, 10, None)


async def test_another_accounts_slot_answers_like_an_unknown_one(make: Make) -> None:
    m = await make()
    slot = await m.service.create_upload(ALICE, 10, None)
    for call in (
        m.service.upload_status(BOB, slot.id),
        m.service.complete(BOB, slot.id, []),
        m.service.upload_status(ALICE, "A" * 22),
        m.service.download(BOB, slot.id),  # not complete yet
    ):
        err = await refusal(call)
        assert err.code == ErrorCode.MEDIA_NOT_FOUND
    # Another device of the uploader's account may resume it.
    assert (await m.service.upload_status(ALICE_2, slot.id)).id == slot.id


async def test_completion_names_the_missing_parts(make: Make) -> None:
    m = await make()
    slot = await m.service.create_upload(ALICE, 3 * PART, None)

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * PART

    await m.blobs.write_part(slot.id, 2, PART, PART, body())
    err = await refusal(m.service.complete(ALICE, slot.id, []))
    assert err.code == ErrorCode.MEDIA_INCOMPLETE and err.details["missing"] == [1, 3]
    err = await refusal(m.service.complete(ALICE, slot.id, [(4, '"x"')]))
    assert err.code == ErrorCode.BAD_REQUEST
    status = await m.service.upload_status(ALICE, slot.id)
    assert status.received == (2,) and [p.n for p in status.parts] == [1, 3]


async def test_an_expired_slot_is_gone_and_swept(make: Make) -> None:
    m = await make()
    slot = await m.service.create_upload(ALICE, 100, None)
    assert m.files() != []  # the preallocated upload
    m.clock.now += DAY_MS
    err = await refusal(m.service.upload_status(ALICE, slot.id))
    assert err.code == ErrorCode.MEDIA_NOT_FOUND
    assert await m.service.sweep(m.clock.now) == (1, 100)
    assert m.files() == [] and await m.store.get_media(slot.id) is None


async def test_blobs_expire_after_the_retention(make: Make) -> None:
    m = await make(media_retention_days=2)
    media_id = await m.upload(ALICE, 500)
    grant = await m.service.download(BOB, media_id)
    assert grant.size == 500 and grant.expires == NOW + 2 * DAY_MS
    assert await m.service.sweep(m.clock.now) == (0, 0)
    m.clock.now += 2 * DAY_MS
    err = await refusal(m.service.download(BOB, media_id))
    assert err.code == ErrorCode.MEDIA_NOT_FOUND
    assert await m.service.sweep(m.clock.now) == (1, 500)
    assert m.files() == []


async def test_downloads_count_per_device_and_the_last_one_starts_the_end(make: Make) -> None:
    m = await make(media_delete_when_downloaded=True, media_download_url_seconds=60)
    media_id = await m.upload(ALICE, 50, recipients=2)
    await m.service.download(BOB, media_id)
    await m.service.download(BOB, media_id)  # the same device again: still one
    record = await m.store.get_media(media_id)
    assert record is not None and record.downloads == 1 and record.expires > NOW + DAY_MS
    await m.service.download(ALICE_2, media_id)
    record = await m.store.get_media(media_id)
    assert record is not None and record.downloads == 2 and record.expires == NOW + 60_000
    m.clock.now += 60_000
    assert await m.service.sweep(m.clock.now) == (1, 50)


async def test_without_the_setting_downloads_never_shorten_the_life(make: Make) -> None:
    m = await make(media_download_url_seconds=60)
    media_id = await m.upload(ALICE, 50, recipients=1)
    await m.service.download(BOB, media_id)
    record = await m.store.get_media(media_id)
    assert record is not None and record.downloads == 1 and record.expires > NOW + DAY_MS


async def test_a_blob_the_backend_cannot_delete_keeps_its_row(make: Make) -> None:
    m = await make(media_retention_days=1)
    media_id = await m.upload(ALICE, 50)
    m.clock.now += DAY_MS
    real_delete = m.blobs.delete

    async def failing(media_id: str, upload: str | None) -> None:
        raise OSError("disk on fire")

    m.blobs.delete = failing  # type: ignore[method-assign]
    assert await m.service.sweep(m.clock.now) == (0, 0)
    assert await m.store.get_media(media_id) is not None  # found again by the next sweep
    m.blobs.delete = real_delete  # type: ignore[method-assign]
    assert await m.service.sweep(m.clock.now) == (1, 50)
    assert await m.store.get_media(media_id) is None


async def test_an_abandoned_slot_frees_its_place_even_if_its_bytes_stay_for_the_sweep(
    make: Make,
) -> None:
    m = await make(media_max_pending_uploads=1)
    slot = await m.service.create_upload(ALICE, 10, None)
    assert (await refusal(m.service.abandon_upload(BOB, slot.id))).code == "media_not_found"

    async def failing(media_id: str, upload: str | None) -> None:
        raise OSError("disk on fire")

    real_delete = m.blobs.delete
    m.blobs.delete = failing  # type: ignore[method-assign]
    await m.service.abandon_upload(ALICE, slot.id)  # answered: the slot is given up
    err = await refusal(m.service.abandon_upload(ALICE, slot.id))
    assert err.code == ErrorCode.MEDIA_NOT_FOUND
    second = await m.service.create_upload(ALICE, 10, None)  # no longer pending
    m.blobs.delete = real_delete  # type: ignore[method-assign]
    assert await m.service.sweep(m.clock.now) == (1, slot.size)  # its bytes, then its row
    assert await m.store.get_media(slot.id) is None
    await m.service.abandon_upload(ALICE, second.id)
    assert await m.store.get_media(second.id) is None and m.files() == []
    done = await m.upload(ALICE, 10)
    assert (await refusal(m.service.abandon_upload(ALICE, done))).code == "media_upload_done"
