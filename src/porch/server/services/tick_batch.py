"""The sends, and the acknowledgements, of one event-loop tick in one store call (issue 10).

Every connection checks its sends in frame order and hands each over (`submit`), and deletes
what its device acknowledged; the calls that reach the store in one tick, from every
connection, join one batch, handed to the store when the tick's callbacks have run
(`call_soon`): one store call, one future and, on SQLite, a few `executemany`s for all of them,
where each used to cost a savepoint, a future and a thread hop (store/sqlite_batch.py: one
that fails still fails alone). Batches go to the store in the order they were made, and a
batch's items in the order they joined, so one sender's messages still commit in order.
An item is answered through a callback (`add_callback`, run on the event loop when its batch
is done: no future and no task per send) or a future of its own (`add`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from porch.failures import log_failure
from porch.server.store.base import StoreError

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger("porch.store")


class TickBatcher(Generic[Item, Result]):
    def __init__(
        self,
        submit: Callable[[list[Item]], asyncio.Future[list[Result | Exception]]],
        observe: Callable[[Sequence[Result | BaseException]], None] | None = None,
    ) -> None:
        self._submit = submit  # the store's batch call: one outcome per item, in order
        # Told of a whole batch's outcomes before its waiters (metrics: one call a batch).
        self._observe = observe
        self._waiting: list[tuple[Item, Callable[[Result | BaseException], None]]] = []
        # The loop of the first batch, kept, as lightsync.Flag keeps its own: on Python 3.11
        # asyncio.get_running_loop() makes a getpid() system call (its fork check), once per
        # send and per ack here (issue 10). A batcher belongs to one app, on one loop.
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, item: Item) -> asyncio.Future[Result]:
        """The item's own future: a waiter that is cancelled cancels nothing of the batch."""
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.add_callback(item, lambda outcome: _settle_one(fut, outcome))
        return fut

    def add_callback(self, item: Item, done: Callable[[Result | BaseException], None]) -> None:
        """done(result or exception) runs on the loop once the item's batch is written."""
        if not self._waiting:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._flush)
        self._waiting.append((item, done))

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            done = self._submit([item for item, _ in batch])
        except Exception as exc:  # the store is closed: every waiter is told
            _answer(batch, [exc] * len(batch))
            return
        done.add_done_callback(lambda d: _outcomes(batch, d, self._observe))


Waiting = list[tuple[Item, Callable[[Result | BaseException], None]]]


def _outcomes(
    batch: Waiting[Item, Result],
    done: asyncio.Future[list[Result | Exception]],
    observe: Callable[[Sequence[Result | BaseException]], None] | None = None,
) -> None:
    if done.cancelled():
        failure = StoreError("the store stopped before this batch was written")
        _answer(batch, [failure] * len(batch))
        return
    exc = done.exception()
    if exc is not None:
        _answer(batch, [exc] * len(batch))
        return
    outcomes = done.result()
    if len(outcomes) != len(batch):  # never, by the store's contract: still, nobody hangs
        _answer(batch, [StoreError("the store answered a batch wrongly")] * len(batch))
        return
    if observe is not None:
        try:
            observe(outcomes)
        except Exception as failure:  # never at the waiters' expense
            log_failure(log, "a batch's observer failed", exc=failure)
    _answer(batch, outcomes)


def _answer(batch: Waiting[Item, Result], outcomes: Sequence[Result | BaseException]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        try:
            done(outcome)
        except Exception as exc:  # one waiter's failure never leaves the others unanswered
            log_failure(log, "a batch's waiter failed", exc=exc)


def _settle_one(fut: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if fut.done():
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)
