"""The retention sweep: expired envelopes, idempotency records and verification codes go.

A sweep that fails (a disk error, a lost connection, anything) is logged and tried again at
the next interval; it never stops the sweeper or closes the store, so one bad moment costs
one interval of expiry, not the server's readiness (issue 7: before, one OSError here ended
the lifespan's task group, which closed the store while /healthz still said ok).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from porch.failures import log_failure
from porch.server.clock import Clock
from porch.server.lifecycle import Component
from porch.server.metrics import Metrics
from porch.server.store.base import SweepResult

log = logging.getLogger("porch.store")


class Sweeper(Component):
    def __init__(
        self,
        sweep: Callable[[int], Awaitable[SweepResult]],
        queue_depth: Callable[[], Awaitable[int]],
        clock: Clock,
        metrics: Metrics,
        interval: float,
    ) -> None:
        self._sweep = sweep
        self._queue_depth = queue_depth
        self._clock = clock
        self._metrics = metrics
        self._interval = interval
        self.failures = 0  # sweeps that failed since the process started
        self.last: SweepResult | None = None  # the last sweep that succeeded

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(self._sweep_forever())
            try:
                yield
            finally:
                task.cancel()

    async def sweep_once(self) -> bool:
        """One sweep; False (logged, counted) if it failed."""
        try:
            result = await self._sweep(self._clock.now_ms())
            self._metrics.queue_depth.set(await self._queue_depth())
        except Exception as exc:
            self.failures += 1
            log_failure(log, "retention sweep failed; next try in %.0f s", self._interval, exc=exc)
            return False
        self.last = result
        if result.envelopes:
            log.info("expired %d undelivered envelope(s)", result.envelopes)
        return True

    async def _sweep_forever(self) -> None:
        while True:
            await self.sweep_once()
            await asyncio.sleep(self._interval)
