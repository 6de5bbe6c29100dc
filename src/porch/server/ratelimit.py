"""Rate limits as fixed windows: "N hits per S seconds" for a key.

The in-memory limiter serves one process; the Redis limiter (scale-out) keeps the same
interface so services never know which they have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.clock import Clock

log = logging.getLogger("porch.ratelimit")


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


# What each limiter scope counts, in the words of the error message: scope names are internal
# keys (and Redis key parts), never shown to people.
SCOPE_WORDS = {
    "code-address": "code requests from this address",
    "register-address": "registration attempts from this address",
    "directory": "directory lookups",
    "auth-failures": "failed sign-ins from this address",
    "key-claims": "key requests",
    "group-joins": "group joins",
    "provisioning-address": "device-linking channels from this address",
    "link-address": "device links from this address",
    "media-uploads": "attachment uploads",
}


def in_words(seconds: int) -> str:
    """A wait as a person says it: "30 seconds", "4 minutes", "1 hour and 5 minutes"."""
    seconds = max(1, int(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 30) // 60  # to the nearest minute: retry_after has the exact figure
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} hour{'s' if hours != 1 else ''}"
    return text + (f" and {minutes} minute{'s' if minutes != 1 else ''}" if minutes else "")


def too_many(what: str, retry_after: int, **details: Any) -> ProtocolError:
    """rate_limited with retry_after (seconds) and "too many ...; try again in 4 minutes"."""
    return ProtocolError(
        ErrorCode.RATE_LIMITED,
        f"too many {what}; try again in {in_words(retry_after)}",
        retry_after=retry_after,
        **details,
    )


def count_hit(
    window: tuple[float, int], now: float, limit: Limit, what: str, **details: Any
) -> tuple[float, int]:
    """One hit on a fixed window (start, hits): the window after it, or a ProtocolError
    (rate_limited, with retry_after) when the window is full."""
    start, count = window
    if now - start >= limit.seconds:
        start, count = now, 0
    if count >= limit.count:
        retry_after = max(1, int(limit.seconds - (now - start)) + 1)
        raise too_many(what, retry_after, **details)
    return start, count + 1


class RateLimiter(Protocol):
    async def hit(self, scope: str, key: str, limit: Limit) -> None:
        """Count one hit; raise ProtocolError(rate_limited) with retry_after when over."""
        ...


class MemoryRateLimiter:
    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        # (scope, key) -> (window start, hits, window length)
        self._windows: dict[tuple[str, str], tuple[float, int, float]] = {}
        self._max_keys = max_keys

    async def hit(self, scope: str, key: str, limit: Limit) -> None:
        now = self._clock.monotonic()
        slot = (scope, key)
        start, count, _ = self._windows.get(slot, (now, 0, limit.seconds))
        start, count = count_hit((start, count), now, limit, SCOPE_WORDS.get(scope, "requests"))
        if len(self._windows) >= self._max_keys:
            self._evict(now)
        self._windows[slot] = (start, count, limit.seconds)

    def _evict(self, now: float) -> None:
        # Windows that are over by their own length; if none are, the half closest to its end
        # goes (memory stays bounded; long windows, such as per-number code limits, stay).
        stale = [k for k, (start, _, length) in self._windows.items() if now - start >= length]
        if not stale:
            remaining = sorted(self._windows, key=lambda k: sum(self._windows[k][::2]) - now)
            stale = remaining[: max(1, len(remaining) // 2)]
        for k in stale:
            del self._windows[k]


class RedisRateLimiter:
    """Fixed windows in Redis, shared by every node: INCR a per-window key, expire it with
    the window. Fails open (logs, lets the request through) while Redis is unreachable:
    refusing every registration because a cache is down would be the worse outage."""

    def __init__(self, redis: Any, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    async def hit(self, scope: str, key: str, limit: Limit) -> None:
        now = self._clock.now_ms() / 1000
        window = int(now // limit.seconds)
        name = f"porch:rl:{scope}:{key}:{int(limit.seconds)}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, int(limit.seconds) + 1)
            count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate limiter unavailable (%s); allowing the request", type(exc).__name__)
            return
        if int(count) > limit.count:
            retry_after = max(1, int((window + 1) * limit.seconds - now) + 1)
            raise too_many(SCOPE_WORDS.get(scope, "requests"), retry_after)
