"""Fixed-window rate limits: parsing and the in-memory limiter under a controlled clock."""

from __future__ import annotations

import pytest

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.ratelimit import Limit, MemoryRateLimiter, in_words


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def now_ms(self) -> int:
        return int(self.t * 1000)

    def monotonic(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [("5/3600", 5, 3600.0), ("1/1", 1, 1.0), ("1000/0.5", 1000, 0.5), (" 3 / 60 ", 3, 60.0)],
)
def test_parse_good(text: str, count: int, seconds: float) -> None:
    assert Limit.parse(text) == Limit(count, seconds)


@pytest.mark.parametrize(
    "text",
    ["", "5", "5/", "/60", "a/60", "5/b", "5/60/1", "0/60", "-1/60", "5/0", "5/-3", "1.5/60"],
)
def test_parse_bad(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        Limit.parse(text)


async def _hits(limiter: MemoryRateLimiter, n: int, limit: Limit, key: str = "k") -> None:
    for _ in range(n):
        await limiter.hit("scope", key, limit)


async def test_n_hits_pass_then_rate_limited() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = Limit(3, 60)
    await _hits(limiter, 3, limit)
    with pytest.raises(ProtocolError) as info:
        await limiter.hit("scope", "k", limit)
    assert info.value.code == ErrorCode.RATE_LIMITED
    assert info.value.details["retry_after"] == 61
    assert info.value.message == "too many requests; try again in 1 minute"
    assert info.value.to_dict()["retry_after"] == 61


async def test_retry_after_shrinks_as_the_window_passes() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = Limit(1, 60)
    await limiter.hit("s", "k", limit)
    clock.advance(50)
    with pytest.raises(ProtocolError) as info:
        await limiter.hit("s", "k", limit)
    assert info.value.details["retry_after"] == 11
    clock.advance(9.9)
    with pytest.raises(ProtocolError) as info:
        await limiter.hit("s", "k", limit)
    assert info.value.details["retry_after"] >= 1


async def test_rejected_hits_do_not_extend_the_window() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = Limit(2, 10)
    await _hits(limiter, 2, limit)
    for _ in range(5):
        clock.advance(1)
        with pytest.raises(ProtocolError):
            await limiter.hit("scope", "k", limit)
    clock.advance(5)  # 10 s after the first hit
    await limiter.hit("scope", "k", limit)


async def test_window_resets() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = Limit(2, 10)
    await _hits(limiter, 2, limit)
    clock.advance(9.999)
    with pytest.raises(ProtocolError):
        await limiter.hit("scope", "k", limit)
    clock.advance(0.001)
    await _hits(limiter, 2, limit)  # a fresh window of two
    with pytest.raises(ProtocolError):
        await limiter.hit("scope", "k", limit)


async def test_keys_and_scopes_are_independent() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = Limit(1, 60)
    await limiter.hit("a", "k1", limit)
    await limiter.hit("a", "k2", limit)
    await limiter.hit("b", "k1", limit)
    with pytest.raises(ProtocolError):
        await limiter.hit("a", "k1", limit)
    with pytest.raises(ProtocolError):
        await limiter.hit("a", "k2", limit)
    with pytest.raises(ProtocolError):
        await limiter.hit("b", "k1", limit)
    await limiter.hit("b", "k2", limit)


async def test_eviction_bounds_memory_and_keeps_limiting() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock, max_keys=10)
    limit = Limit(1, 60)
    for i in range(100):
        await limiter.hit("s", f"k{i}", limit)
    assert len(limiter._windows) <= 10
    # The most recent key is still tracked.
    with pytest.raises(ProtocolError):
        await limiter.hit("s", "k99", limit)


async def test_eviction_prefers_stale_windows() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock, max_keys=3)
    limit = Limit(1, 60)
    await limiter.hit("s", "old", limit)
    clock.advance(61)
    await limiter.hit("s", "a", limit)
    await limiter.hit("s", "b", limit)
    await limiter.hit("s", "c", limit)  # full: only the stale "old" window goes
    for key in ("a", "b"):
        with pytest.raises(ProtocolError):
            await limiter.hit("s", key, limit)


async def test_eviction_keeps_active_windows_of_longer_limits() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock, max_keys=2)
    hourly = Limit(1, 3600)
    await limiter.hit("code-address", "+14155550100", hourly)
    clock.advance(2)
    await limiter.hit("short", "a", Limit(1, 1))
    await limiter.hit("short", "b", Limit(1, 1))  # full: evicts with a 1 s horizon
    with pytest.raises(ProtocolError):
        await limiter.hit("code-address", "+14155550100", hourly)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "1 second"),
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (89, "1 minute"),
        (90, "2 minutes"),
        (240, "4 minutes"),
        (3600, "1 hour"),
        (3601, "1 hour"),
        (7500, "2 hours and 5 minutes"),
    ],
)
def test_waits_in_words(seconds: int, words: str) -> None:
    assert in_words(seconds) == words


async def test_messages_name_what_is_counted_not_the_scope() -> None:
    limiter = MemoryRateLimiter(FakeClock())
    await limiter.hit("code-address", "192.0.2.1", Limit(1, 3600))
    with pytest.raises(ProtocolError) as info:
        await limiter.hit("code-address", "192.0.2.1", Limit(1, 3600))
    assert info.value.message == "too many code requests from this address; try again in 1 hour"
    assert "code-address" not in info.value.message
