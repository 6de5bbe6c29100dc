"""Bounds on the filesystem backend's part PUTs (spec §6; docs/operations.md, "Media").

A part body arrives over seconds to minutes, so each PUT holds a connection and a worker for
that long. Without bounds a caller with one valid URL could open any number of PUTs and let
them stall. Two guards: `idle_limited` abandons a body that sends no byte for the idle time,
and `PutCounter` caps concurrent PUTs per upload slot and per account. Counts are per server
process (each node of a cluster holds its own), which bounds what one node can be made to hold.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator

from porch.protocol.errors import ErrorCode, ProtocolError


def body_idle(seconds: float) -> ProtocolError:
    return ProtocolError(
        ErrorCode.REQUEST_TIMEOUT,
        f"no byte of this part arrived for {seconds:g} seconds; send the part again",
        idle_seconds=seconds,
    )


async def idle_limited(chunks: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """chunks, raising request_timeout when the next one takes longer than `seconds`."""
    it = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await anext(it)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise body_idle(seconds) from None
        yield chunk


class PutCounter:
    """Concurrent part PUTs in flight, by upload slot and by account."""

    def __init__(self, per_upload: int, per_account: int) -> None:
        self._per_upload = per_upload
        self._per_account = per_account
        self._uploads: Counter[str] = Counter()
        self._accounts: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, media_id: str, account_id: str) -> Iterator[None]:
        """One PUT's place for its duration; media_busy (429) when either cap is full."""
        if self._uploads[media_id] >= self._per_upload:
            raise _busy(
                f"this upload already has {self._per_upload} parts in flight", self._per_upload
            )
        if self._accounts[account_id] >= self._per_account:
            raise _busy(
                f"this account already has {self._per_account} parts in flight", self._per_account
            )
        self._uploads[media_id] += 1
        self._accounts[account_id] += 1
        try:
            yield
        finally:
            _release(self._uploads, media_id)
            _release(self._accounts, account_id)

    def in_flight(self) -> int:
        return sum(self._uploads.values())


def _release(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:  # the maps hold only keys with PUTs in flight
        del counts[key]


def _busy(what: str, limit: int) -> ProtocolError:
    return ProtocolError(
        ErrorCode.MEDIA_BUSY,
        f"{what}; wait for one to finish, then send this part again",
        limit=limit,
        retry_after=1,
    )
