"""Retrying transient failures: one policy for the stores and the bus.

Each backend names its transient errors in one function (a lost connection, a busy database,
a failover); those are retried with capped exponential backoff and "equal jitter" (AWS
Architecture Blog, "Exponential Backoff and Jitter": half of each wait fixed, half random, so
that retries spread out but the tries together always cover a known time). Everything else
is a bug or bad input and is raised at once, loudly: retrying it would only hide it (Trio's
serve_listeners retries a named set of accept() errors and lets every other one crash).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
Classifier = Callable[[BaseException], bool]

log = logging.getLogger("porch.retry")


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 4  # tries in all, the first included
    first: float = 0.05  # seconds before the first retry (half of it to all of it: jittered)
    cap: float = 2.0  # no wait is longer than this

    def delays(self) -> Iterator[float]:
        """The waits before each retry: attempts - 1 of them."""
        for n in range(self.attempts - 1):
            delay = min(self.cap, self.first * 2**n)
            yield random.uniform(delay / 2, delay)


DEFAULT = Backoff()


async def retry(
    op: Callable[[], Awaitable[T]], transient: Classifier, what: str, backoff: Backoff = DEFAULT
) -> T:
    delays = backoff.delays()
    while True:
        try:
            return await op()
        except Exception as exc:
            delay = next(delays, None) if transient(exc) else None
            if delay is None:
                raise
            log.warning("%s failed (%s); retrying in %.2f s", what, type(exc).__name__, delay)
            await asyncio.sleep(delay)


def retry_sync(
    op: Callable[[], T], transient: Classifier, what: str, backoff: Backoff = DEFAULT
) -> T:
    """The same, for code on a thread of its own (the SQLite store's)."""
    delays = backoff.delays()
    while True:
        try:
            return op()
        except Exception as exc:
            delay = next(delays, None) if transient(exc) else None
            if delay is None:
                raise
            log.warning("%s failed (%s); retrying in %.2f s", what, type(exc).__name__, delay)
            time.sleep(delay)
