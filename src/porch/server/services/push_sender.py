"""Sending pushes: after an envelope is stored, wake its device if it is offline
(ARCHITECTURE.md, "Message path", step 3; Signal-Server's MessageSender: insert, then
presence, then push).

`wake(account, device)` is called on the send path after the commit, so it only queues: a
bounded queue of devices, each queued once however many envelopes it got. Workers then, per
device: skip it if it is connected on any node (bus.connected), if it was woken within
PORCH_PUSH_COALESCE_SECONDS (a fixed window in the rate limiter, so shared by every node with
Redis), or if it has no subscription; else send `{"t":"wake"}` through the provider, retrying
transient answers (429, 5xx, network) with capped backoff and deleting the subscription on
404/410. A full queue drops the wake-up and counts it: the envelope is stored either way,
and the device reads it when it next connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from porch.protocol.errors import ProtocolError
from porch.server.bus.base import Bus
from porch.server.lifecycle import Component
from porch.server.metrics import Metrics
from porch.server.providers.push import (
    WAKE_PAYLOAD,
    PushOutcome,
    PushProvider,
    PushResult,
    PushSubscription,
)
from porch.server.ratelimit import Limit, RateLimiter
from porch.server.store.push import PushStore

log = logging.getLogger("porch.push")

_Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PushConfig:
    coalesce_seconds: int = 30
    ttl_seconds: int = 3600
    queue_size: int = 10_000
    concurrency: int = 8
    attempts: int = 4  # tries per push, the first included
    first_delay: float = 1.0  # seconds before the first retry; doubled, jittered
    max_delay: float = 60.0  # no wait is longer, whatever Retry-After says


class PushSender(Component):
    def __init__(
        self,
        store: PushStore,
        bus: Bus,
        limiter: RateLimiter,
        open_provider: Callable[[], Awaitable[PushProvider]],
        metrics: Metrics,
        config: PushConfig,
    ) -> None:
        self._store = store
        self._bus = bus
        self._limiter = limiter
        self._open_provider = open_provider
        self._metrics = metrics
        self._config = config
        self._coalesce = Limit(1, config.coalesce_seconds)
        self._queue: asyncio.Queue[_Key] = asyncio.Queue(config.queue_size)
        self._queued: set[_Key] = set()  # in the queue now: a device waits there once
        self._running = False

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        provider = await self._open_provider()
        try:
            async with asyncio.TaskGroup() as tg:
                workers = [
                    tg.create_task(self._work_forever(provider))
                    for _ in range(self._config.concurrency)
                ]
                self._running = True
                try:
                    yield
                finally:
                    # Queued wake-ups are hints, not records: they go with the process.
                    self._running = False
                    for worker in workers:
                        worker.cancel()
        finally:
            await provider.aclose()

    def wake(self, account_id: str, device_id: int) -> None:
        """Queue a wake-up for the device (never blocks: called on the send path)."""
        key = (account_id, device_id)
        if not self._running or key in self._queued:
            return
        try:
            self._queue.put_nowait(key)
        except asyncio.QueueFull:
            self._metrics.push("dropped")
            return
        self._queued.add(key)

    def online(self, n: int) -> None:
        """n wake-ups not queued because a connection on this node took the envelope: counted
        as a worker's "online" would count them (one counter update for a whole group message,
        where a queued wake-up per device cost a queue put, a worker's step and a bus lookup
        each, issue 10)."""
        self._metrics.push("online", n)

    async def _work_forever(self, provider: PushProvider) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                outcome = await self._wake(provider, *key)
            except Exception as exc:
                # A store or bus failure loses one wake-up, never the worker: the envelope is
                # stored and the device reads it when it next connects.
                log.warning("push wake-up failed (%s)", type(exc).__name__)
                outcome = "error"
            self._metrics.push(outcome)

    async def _wake(self, provider: PushProvider, account_id: str, device_id: int) -> str:
        if await self._bus.connected(account_id, device_id):
            return "online"
        # The window before the store: a burst to an offline device (most have no
        # subscription: terminal clients) costs one read per window, not one per envelope.
        try:
            await self._limiter.hit("push-coalesce", f"{account_id}.{device_id}", self._coalesce)
        except ProtocolError:
            return "coalesced"
        subscription = await self._store.get_push_subscription(account_id, device_id)
        if subscription is None:
            return "unsubscribed"
        result = await self._send(provider, subscription)
        if result.outcome is PushOutcome.GONE:
            # Only this endpoint: a renewal stored while the push was out stays.
            await self._store.delete_push_subscription(account_id, device_id, subscription.endpoint)
            log.info("push subscription at %s is gone; deleted", subscription.origin)
        elif result.outcome is not PushOutcome.DELIVERED:
            log.warning(
                "push to %s not delivered (%s, HTTP %s)",
                subscription.origin,
                result.outcome.value,
                result.status,
            )
        return result.outcome.value

    async def _send(self, provider: PushProvider, subscription: PushSubscription) -> PushResult:
        config = self._config
        for attempt in range(config.attempts):
            result = await provider.send(subscription, WAKE_PAYLOAD, config.ttl_seconds)
            if result.outcome is not PushOutcome.RETRY or attempt == config.attempts - 1:
                return result
            delay = min(config.max_delay, config.first_delay * 2**attempt)
            delay = random.uniform(delay / 2, delay)  # equal jitter, as retry.py
            if result.retry_after is not None:
                delay = min(config.max_delay, max(delay, result.retry_after))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns")
