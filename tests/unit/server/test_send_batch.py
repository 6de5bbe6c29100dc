"""SendBatcher: the sends of one event-loop tick go to the store in one call, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from porch.server.services.send_batch import SendBatcher
from porch.server.store.base import OutgoingMessage, StoredMessage, StoreError


class RecordingStore:
    """store_messages only (the one call the batcher makes): records each call's sends and
    answers each with its outcome, a timestamp, or the exception named by its client id."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.closed = False

    def store_messages(
        self, sends: Sequence[OutgoingMessage]
    ) -> asyncio.Future[list[StoredMessage | Exception]]:
        if self.closed:
            raise StoreError("the store is not open")
        self.calls.append([s.client_id for s in sends])
        fut: asyncio.Future[list[StoredMessage | Exception]] = (
            asyncio.get_running_loop().create_future()
        )
        outcomes: list[StoredMessage | Exception] = [
            ValueError(s.client_id)
            if s.client_id.startswith("bad")
            else StoredMessage(s.now, (), False)
            for s in sends
        ]
        asyncio.get_running_loop().call_soon(fut.set_result, outcomes)
        return fut


def _send(client_id: str, now: int = 1) -> OutgoingMessage:
    return OutgoingMessage("a", 1, client_id, [], None, now, now + 1)


async def test_one_tick_is_one_call_and_each_waiter_gets_its_own_outcome() -> None:
    store = RecordingStore()
    batcher = SendBatcher(store)  # type: ignore[arg-type]
    futures = [batcher.store(_send(c, n)) for n, c in enumerate(["m1", "bad1", "m2"])]
    assert store.calls == []  # handed over when the tick's callbacks have run
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert store.calls == [["m1", "bad1", "m2"]]
    assert isinstance(results[0], StoredMessage) and results[0].ts == 0
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], StoredMessage) and results[2].ts == 2
    # The next tick's sends are the next call.
    await batcher.store(_send("m3"))
    assert store.calls[-1] == ["m3"]


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    store = RecordingStore()
    batcher = SendBatcher(store)  # type: ignore[arg-type]
    first = batcher.store(_send("m1"))
    second = batcher.store(_send("m2"))
    first.cancel()
    assert (await second).ts == 1
    assert store.calls == [["m1", "m2"]]


async def test_a_closed_store_fails_every_waiter() -> None:
    store = RecordingStore()
    store.closed = True
    batcher = SendBatcher(store)  # type: ignore[arg-type]
    futures = [batcher.store(_send("m1")), batcher.store(_send("m2"))]
    for fut in futures:
        with pytest.raises(StoreError):
            await fut
