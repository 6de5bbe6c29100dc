"""The media store's contract, on SQLite and on PostgreSQL (the fixtures of test_contract)."""

# ruff: noqa: F811 (the fixtures imported from test_contract are parameters here)

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from porch.server.store.base import Store
from porch.server.store.media_records import (
    UPLOADING,
    MediaQuotaExceeded,
    MediaRecord,
    TooManyPendingUploads,
)
from tests.unit.server.store.helpers import NOW, PHONE_A, register
from tests.unit.server.store.test_contract import make, store  # noqa: F401 (fixtures)

DAY = 86_400_000


def slot(media_id: str, account: str, size: int = 100, created: int = NOW) -> MediaRecord:
    return MediaRecord(
        id=media_id.ljust(22, "x"),
        account_id=account,
        device_id=1,
        size=size,
        part_size=64,
        upload="",
        state=UPLOADING,
        created=created,
        expires=created + DAY,
        recipients=2,
        downloads=0,
    )


async def test_create_get_complete(store: Store) -> None:
    a = await register(store, PHONE_A)
    record = slot("one", a)
    await store.create_media(record, NOW - DAY, 10_000, 5)
    assert await store.get_media(record.id) == record
    await store.set_media_upload(record.id, "handle")
    done = await store.complete_media(record.id, NOW + 30 * DAY)
    assert done == dataclasses.replace(
        record, upload="handle", state="complete", expires=NOW + 30 * DAY
    )
    assert done.complete
    assert await store.complete_media(record.id, NOW + 99 * DAY) is None  # once only
    assert await store.get_media("nope".ljust(22, "x")) is None


async def test_quota_and_pending_are_checked_with_the_insert(store: Store) -> None:
    a = await register(store, PHONE_A)
    await store.create_media(slot("old", a, 900, NOW - DAY), NOW - DAY, 1000, 5)  # not counted
    await store.create_media(slot("q1", a, 600), NOW - DAY, 1000, 5)
    with pytest.raises(MediaQuotaExceeded) as over:
        await store.create_media(slot("q2", a, 401), NOW - DAY, 1000, 5)
    assert over.value.used == 600
    await store.create_media(slot("q3", a, 400), NOW - DAY, 1000, 5)  # exactly the quota
    # Pending: unfinished and unexpired ("old" expired at NOW) slots only.
    with pytest.raises(TooManyPendingUploads):
        await store.create_media(slot("p", a, 1), NOW - DAY, 10_000, 2)
    assert await store.get_media(slot("p", a).id) is None


async def test_concurrent_slots_cannot_together_pass_the_quota(store: Store) -> None:
    a = await register(store, PHONE_A)
    results = await asyncio.gather(
        *(store.create_media(slot(f"c{i}", a, 300), NOW - DAY, 1000, 50) for i in range(6)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 3
    assert all(isinstance(r, MediaQuotaExceeded) for r in results if r is not None)


async def test_downloads_count_once_per_device_and_may_end_early(store: Store) -> None:
    a = await register(store, PHONE_A)
    record = slot("d", a)
    await store.create_media(record, NOW - DAY, 10_000, 5)
    await store.complete_media(record.id, NOW + 30 * DAY)
    assert await store.count_download(record.id, "x", 1, NOW + 60)
    assert not await store.count_download(record.id, "x", 1, NOW + 60)
    got = await store.get_media(record.id)
    assert got is not None and got.downloads == 1 and got.expires == NOW + 30 * DAY
    assert await store.count_download(record.id, "x", 2, None)  # no early expiry asked
    got = await store.get_media(record.id)
    assert got is not None and got.downloads == 2 and got.expires == NOW + 30 * DAY
    assert await store.count_download(record.id, "y", 1, NOW + 60)
    got = await store.get_media(record.id)
    assert got is not None and got.expires == NOW + 60  # recipients (2) reached


async def test_expired_oldest_first_and_deleted_with_downloads(store: Store) -> None:
    a = await register(store, PHONE_A)
    for i, created in enumerate((NOW - 3 * DAY, NOW - 2 * DAY, NOW)):
        await store.create_media(slot(f"e{i}", a, 1, created), NOW - 9 * DAY, 10_000, 50)
    await store.count_download(slot("e0", a).id, "x", 1, None)
    expired = await store.expired_media(NOW, 10)
    assert [r.id for r in expired] == [slot("e0", a).id, slot("e1", a).id]
    assert [r.id for r in await store.expired_media(NOW, 1)] == [slot("e0", a).id]
    assert await store.delete_media([r.id for r in expired]) == 2
    assert await store.delete_media([slot("e0", a).id]) == 0
    assert await store.expired_media(NOW, 10) == []
    # Its download record went with it: counting again starts from nothing.
    await store.create_media(slot("e0", a, 1), NOW - DAY, 10_000, 50)
    assert await store.count_download(slot("e0", a).id, "x", 1, None)
