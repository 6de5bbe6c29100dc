"""TickBatcher: what reaches the store in one event-loop tick is one call, in order."""

from __future__ import annotations

import asyncio

import pytest

from porch.server.services.tick_batch import TickBatcher
from porch.server.store.base import StoreError


class RecordingStore:
    """A store batch call: records each call's items and answers each with its outcome, its
    length, or ValueError for an item that starts with "bad"."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.closed = False

    def submit(self, items: list[str]) -> asyncio.Future[list[int | Exception]]:
        if self.closed:
            raise StoreError("the store is not open")
        self.calls.append(list(items))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[int | Exception]] = loop.create_future()
        outcomes: list[int | Exception] = [
            ValueError(i) if i.startswith("bad") else len(i) for i in items
        ]
        loop.call_soon(fut.set_result, outcomes)
        return fut


async def test_one_tick_is_one_call_and_each_waiter_gets_its_own_outcome() -> None:
    store = RecordingStore()
    batcher: TickBatcher[str, int] = TickBatcher(store.submit)
    futures = [batcher.add(i) for i in ["m1", "bad1", "m222"]]
    assert store.calls == []  # handed over when the tick's callbacks have run
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert store.calls == [["m1", "bad1", "m222"]]
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], ValueError)
    # The next tick's items are the next call.
    assert await batcher.add("m3") == 2
    assert store.calls[-1] == ["m3"]


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    store = RecordingStore()
    batcher: TickBatcher[str, int] = TickBatcher(store.submit)
    first = batcher.add("m1")
    second = batcher.add("m22")
    first.cancel()
    assert await second == 3
    assert store.calls == [["m1", "m22"]]


async def test_a_closed_store_fails_every_waiter() -> None:
    store = RecordingStore()
    store.closed = True
    batcher: TickBatcher[str, int] = TickBatcher(store.submit)
    futures = [batcher.add("m1"), batcher.add("m2")]
    for fut in futures:
        with pytest.raises(StoreError):
            await fut
