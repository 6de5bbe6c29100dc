"""Wake-ups for offline devices (services/push_sender.py) with the real pieces: SQLite store,
in-process bus, in-memory rate limiter, the Web Push adapter and a push service on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from porch.server.bus.memory import MemoryBus
from porch.server.metrics import Metrics
from porch.server.providers.push import PushProvider, PushSubscription
from porch.server.providers.push_webpush import VapidKey, WebPush
from porch.server.ratelimit import MemoryRateLimiter
from porch.server.services.push_sender import PushConfig, PushSender
from porch.server.store.sqlite import SqliteStore
from tests.integration.push_service import Browser, PushService


class SteppedClock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def now_ms(self) -> int:
        return int(self.t * 1000)

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def service(tmp_path: Path) -> Iterator[PushService]:
    with PushService(tmp_path) as ps:
        yield ps


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "porch.db") as s:
        yield s


class Rig:
    def __init__(self, store: SqliteStore, service: PushService, **config: int) -> None:
        self.store, self.service = store, service
        self.bus, self.clock, self.metrics = MemoryBus(), SteppedClock(), Metrics()
        self.browser = Browser()

        async def open_provider() -> PushProvider:
            vapid = VapidKey(VapidKey.generate_raw())
            return WebPush(vapid, "mailto:ops@example.org", verify=service.client_context())

        cfg = PushConfig(first_delay=0.01, max_delay=0.05, **config)  # type: ignore[arg-type]
        self.sender = PushSender(
            store, self.bus, MemoryRateLimiter(self.clock), open_provider, self.metrics, cfg
        )

    async def subscribe(self, account: str = "acc", device: int = 2) -> None:
        keys = self.browser.keys()
        await self.store.put_push_subscription(
            PushSubscription(
                account, device, "webpush", self.service.endpoint(), keys["p256dh"], keys["auth"], 1
            )
        )

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value("porch_pushes_total", {"outcome": outcome})
        return value or 0.0

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not check():
                await asyncio.sleep(0.01)


async def test_an_offline_device_is_woken(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service)
    await rig.subscribe()
    async with rig.sender:
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("delivered") == 1)
    (request,) = service.requests
    assert rig.browser.decrypt(request.body) == b'{"t":"wake"}'
    assert request.headers["ttl"] == "3600"


async def test_a_connected_device_is_not(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service)
    await rig.subscribe()
    async with rig.sender:
        sub = rig.bus.subscribe("acc", 2, lambda event: None)
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("online") == 1)
        sub.close()
        rig.sender.wake("acc", 2)  # gone again: now it is pushed
        await rig.until(lambda: rig.count("delivered") == 1)
    assert len(service.requests) == 1


async def test_no_subscription_no_push(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service)
    async with rig.sender:
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("unsubscribed") == 1)
    assert service.requests == []


async def test_gone_deletes_the_subscription(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service)
    await rig.subscribe()
    service.statuses.append(410)
    async with rig.sender:
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("gone") == 1)
    assert await store.get_push_subscription("acc", 2) is None


async def test_a_renewal_outlives_the_gone_answer_of_the_old_one(
    store: SqliteStore, service: PushService
) -> None:
    rig = Rig(store, service)
    await rig.subscribe()
    renewed = PushSubscription("acc", 2, "webpush", service.endpoint("new"), "k", "a", 2)
    await store.put_push_subscription(renewed)
    assert not await store.delete_push_subscription("acc", 2, service.endpoint())
    assert await store.get_push_subscription("acc", 2) == renewed


async def test_transient_answers_are_retried(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service)
    await rig.subscribe()
    service.statuses.extend([503, 429])
    async with rig.sender:
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("delivered") == 1)
    assert len(service.requests) == 3


async def test_retries_end(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service, attempts=2)
    await rig.subscribe()
    service.statuses.extend([500, 500, 500])
    async with rig.sender:
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("retry") == 1)
    assert len(service.requests) == 2
    assert await store.get_push_subscription("acc", 2) is not None  # not gone: kept


async def test_pushes_are_coalesced(store: SqliteStore, service: PushService) -> None:
    rig = Rig(store, service, coalesce_seconds=30)
    await rig.subscribe()
    async with rig.sender:
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("delivered") == 1)
        rig.clock.t += 10
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("coalesced") == 1)
        rig.clock.t += 30
        rig.sender.wake("acc", 2)
        await rig.until(lambda: rig.count("delivered") == 2)
    assert len(service.requests) == 2


async def test_a_device_waits_in_the_queue_once_and_the_queue_is_bounded(
    store: SqliteStore, service: PushService
) -> None:
    rig = Rig(store, service, queue_size=16, concurrency=1)
    async with rig.sender:
        # Nothing awaits between these calls, so no worker takes from the queue meanwhile.
        for _ in range(5):
            rig.sender.wake("acc", 1)
        for device in range(2, 30):
            rig.sender.wake("acc", device)
        assert rig.count("dropped") == 30 - 1 - 16
        await rig.until(lambda: rig.count("unsubscribed") == 16)
    assert rig.count("unsubscribed") == 16


async def test_wake_before_start_or_after_stop_is_ignored(
    store: SqliteStore, service: PushService
) -> None:
    rig = Rig(store, service)
    rig.sender.wake("acc", 2)  # not started: nothing queued, nothing raised
    async with rig.sender:
        pass
    rig.sender.wake("acc", 2)
    assert rig.count("dropped") == 0 and service.requests == []
