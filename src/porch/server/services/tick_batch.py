"""The sends, and the acknowledgements, of one event-loop tick in one store call (issue 10).

Every connection checks its sends in frame order and commits each in a task of its own, and
deletes what its device acknowledged; the calls that reach the store in one tick, from every
connection, join one batch, handed to the store when the tick's callbacks have run
(`call_soon`): one store call, one future and, on SQLite, one savepoint for all of them, where
each used to cost a savepoint, a future and a thread hop (store/sqlite.py, `_run_each`: one
that fails still fails alone). Batches go to the store in the order they were made, and a
batch's items in the order they joined, so one sender's messages still commit in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from porch.server.store.base import StoreError

Item = TypeVar("Item")
Result = TypeVar("Result")


class TickBatcher(Generic[Item, Result]):
    def __init__(
        self, submit: Callable[[list[Item]], asyncio.Future[list[Result | Exception]]]
    ) -> None:
        self._submit = submit  # the store's batch call: one outcome per item, in order
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []

    def add(self, item: Item) -> asyncio.Future[Result]:
        """The item's own future: a waiter that is cancelled cancels nothing of the batch."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Result] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append((item, fut))
        return fut

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            done = self._submit([item for item, _ in batch])
        except Exception as exc:  # the store is closed: every waiter is told
            _settle(batch, exc)
            return
        done.add_done_callback(lambda d: _outcomes(batch, d))


def _outcomes(
    batch: list[tuple[Item, asyncio.Future[Result]]],
    done: asyncio.Future[list[Result | Exception]],
) -> None:
    if done.cancelled():
        _settle(batch, StoreError("the store stopped before this batch was written"))
        return
    exc = done.exception()
    if exc is not None:
        _settle(batch, exc)
        return
    for (_, fut), outcome in zip(batch, done.result(), strict=True):
        if fut.done():
            continue
        if isinstance(outcome, Exception):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _settle(batch: list[tuple[Item, asyncio.Future[Result]]], exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)
