"""The device store (store/devices.py) on SQLite and PostgreSQL: provisioning channels and
codes, linking, signed device lists and what the send check counts (spec C)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from porch.server.store.base import CodeNotFound, DeviceListStale, Store, TooManyDevices
from porch.server.store.postgres import PostgresStore
from porch.server.store.sqlite import SqliteStore
from tests.integration.backends import fresh_database, require_services
from tests.unit.server.store.helpers import NOW, PHONE_A, PHONE_B, register, with_keys

Factory = Callable[[], Store]
CHANNEL = b"c" * 32
CODE = b"k" * 32


@pytest.fixture(params=["sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "data" / "porch.db")
        return
    require_services()
    for dsn in fresh_database():
        yield functools.partial(PostgresStore, dsn, pool_size=4)


@pytest.fixture
async def store(make: Factory) -> AsyncIterator[Store]:
    async with make() as s:
        yield s


async def test_a_channel_is_read_once_and_filled_once(store: Store) -> None:
    await store.open_channel(CHANNEL, NOW + 600_000)
    assert await store.take_channel(CHANNEL, NOW) == (True, None)  # nothing yet
    assert await store.fill_channel(CHANNEL, "body", NOW) is True
    assert await store.fill_channel(CHANNEL, "other", NOW) is False  # filled already
    assert await store.take_channel(CHANNEL, NOW) == (True, "body")
    assert await store.take_channel(CHANNEL, NOW) == (False, None)  # deleted on read
    assert await store.fill_channel(CHANNEL, "late", NOW) is None
    assert await store.take_channel(b"x" * 32, NOW) == (False, None)


async def test_concurrent_readers_get_the_body_once(store: Store) -> None:
    await store.open_channel(CHANNEL, NOW + 600_000)
    await store.fill_channel(CHANNEL, "body", NOW)
    results = await asyncio.gather(*(store.take_channel(CHANNEL, NOW) for _ in range(5)))
    assert [r[1] for r in results].count("body") == 1


async def test_expired_channels_and_codes_are_gone_and_swept(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await store.open_channel(CHANNEL, NOW + 10)
    await store.put_provisioning_code(CODE, alice, NOW + 10)
    assert await store.take_channel(CHANNEL, NOW + 10) == (False, None)
    assert await store.fill_channel(CHANNEL, "b", NOW + 10) is None
    with pytest.raises(CodeNotFound):
        await store.link_device(CODE, NOW + 10, b"p" * 32, 7, "phone", 5)
    assert await store.sweep_provisioning(NOW + 10) == 2
    assert await store.sweep_provisioning(NOW + 10) == 0


async def test_link_takes_the_code_once_and_the_next_id(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await store.put_provisioning_code(CODE, alice, NOW + 600_000)
    linked = await store.link_device(CODE, NOW, b"p" * 32, 77, "phone", 5)
    assert (linked.account_id, linked.device_id) == (alice, 2)
    with pytest.raises(CodeNotFound):  # single use
        await store.link_device(CODE, NOW, b"p" * 32, 78, "phone", 5)
    auth = await store.get_device_auth(alice, 2)
    assert auth is not None and auth.registration_id == 77
    names = {d.device_id: d.name for d in await store.list_devices(alice)}
    assert names == {1: "laptop", 2: "phone"}
    # A removed id is not given out again.
    assert await store.delete_device(alice, 2)
    await store.put_provisioning_code(CODE, alice, NOW + 600_000)
    assert (await store.link_device(CODE, NOW, b"p" * 32, 79, "tablet", 5)).device_id == 3


async def test_link_refuses_past_the_maximum_and_keeps_the_code(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await store.put_provisioning_code(CODE, alice, NOW + 600_000)
    with pytest.raises(TooManyDevices):
        await store.link_device(CODE, NOW, b"p" * 32, 7, "phone", 1)
    assert (await store.link_device(CODE, NOW, b"p" * 32, 7, "phone", 2)).device_id == 2


async def test_concurrent_links_get_distinct_ids_within_the_maximum(store: Store) -> None:
    alice = await register(store, PHONE_A)
    codes = [bytes([i]) * 32 for i in range(6)]
    for code in codes:
        await store.put_provisioning_code(code, alice, NOW + 600_000)
    results = await asyncio.gather(
        *(store.link_device(c, NOW, b"p" * 32, 7, "d", 4) for c in codes), return_exceptions=True
    )
    ids = sorted(r.device_id for r in results if not isinstance(r, BaseException))
    assert ids == [2, 3, 4]
    assert sum(isinstance(r, TooManyDevices) for r in results) == 3


async def test_the_signed_list_decides_the_current_devices(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await with_keys(store, alice, 0, fallback=False)
    await store.put_provisioning_code(CODE, alice, NOW + 600_000)
    await store.link_device(CODE, NOW, b"p" * 32, 7, "phone", 5)
    await store.set_identity(alice, 2, "master", "c2", "e2", "sig")
    # No list yet: every keyed device counts.
    assert [d.device_id for d in await store.current_devices(alice)] == [1, 2]
    await store.put_device_list(alice, 1, b"list-1", b"sig-1", [1])
    assert [d.device_id for d in await store.current_devices(alice)] == [1]
    stored = await store.get_device_list(alice)
    assert stored is not None and (stored.version, stored.payload) == (1, b"list-1")
    with pytest.raises(DeviceListStale):
        await store.put_device_list(alice, 1, b"again", b"sig", [1, 2])
    await store.put_device_list(alice, 2, b"list-2", b"sig-2", [1, 2])
    assert [d.device_id for d in await store.current_devices(alice)] == [1, 2]
    # Removing a device takes it out of the check at once.
    await store.delete_device(alice, 2)
    assert [d.device_id for d in await store.current_devices(alice)] == [1]
    assert await store.get_device_list(PHONE_B) is None


async def test_reregistration_drops_the_list_and_codes(store: Store) -> None:
    alice = await register(store, PHONE_A)
    await store.put_device_list(alice, 5, b"list", b"sig", [1])
    await store.put_provisioning_code(CODE, alice, NOW + 600_000)
    assert await register(store, PHONE_A) == alice
    assert await store.get_device_list(alice) is None
    with pytest.raises(CodeNotFound):
        await store.link_device(CODE, NOW, b"p" * 32, 7, "phone", 5)
    await store.put_device_list(alice, 1, b"new", b"sig", [1])  # version 1 again
