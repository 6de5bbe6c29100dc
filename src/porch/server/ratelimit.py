"""Rate limits as fixed windows: "N hits per S seconds" for a key.

The in-memory limiter serves one process; the Redis limiter (scale-out) keeps the same
interface so services never know which they have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.clock import Clock


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Limit:
        """Parse "count/seconds", e.g. "5/3600"."""
        try:
            count, seconds = text.split("/")
            limit = cls(int(count), float(seconds))
        except ValueError:
            raise ValueError(f"a rate limit is 'count/seconds', not {text!r}") from None
        if limit.count < 1 or limit.seconds <= 0:
            raise ValueError(f"a rate limit needs a positive count and window, not {text!r}")
        return limit


class RateLimiter(Protocol):
    async def hit(self, scope: str, key: str, limit: Limit) -> None:
        """Count one hit; raise ProtocolError(rate_limited) with retry_after when over."""
        ...


class MemoryRateLimiter:
    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._max_keys = max_keys

    async def hit(self, scope: str, key: str, limit: Limit) -> None:
        now = self._clock.monotonic()
        slot = (scope, key)
        start, count = self._windows.get(slot, (now, 0))
        if now - start >= limit.seconds:
            start, count = now, 0
        if count >= limit.count:
            retry_after = max(1, int(limit.seconds - (now - start)) + 1)
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many requests for {scope}; try again in {retry_after} s",
                retry_after=retry_after,
            )
        if len(self._windows) >= self._max_keys:
            self._evict(now, limit.seconds)
        self._windows[slot] = (start, count + 1)

    def _evict(self, now: float, horizon: float) -> None:
        stale = [k for k, (start, _) in self._windows.items() if now - start >= horizon]
        for k in stale or list(self._windows)[: len(self._windows) // 2]:
            del self._windows[k]
