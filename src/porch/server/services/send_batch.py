"""The sends of one event-loop tick, stored in one store call (issue 10).

Every connection checks its sends in frame order and commits each in a task of its own; the
tasks that reach the store in one tick join one batch, handed to the store when the tick's
callbacks have run (`call_soon`): one store call, one future and, on SQLite, one savepoint
for all of them, where one each used to cost a savepoint, a future and a thread hop each
(store/sqlite.py, `_run_each`: a send that fails still fails alone). Batches go to the store
in the order they were made, and a batch's sends in the order they joined, so one sender's
messages still commit in order.
"""

from __future__ import annotations

import asyncio

from porch.server.store.base import MessageStore, OutgoingMessage, StoredMessage, StoreError

_Waiting = list[tuple[OutgoingMessage, "asyncio.Future[StoredMessage]"]]


class SendBatcher:
    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self._waiting: _Waiting = []

    def store(self, send: OutgoingMessage) -> asyncio.Future[StoredMessage]:
        """The send's own future: a waiter that is cancelled cancels nothing of the batch."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[StoredMessage] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append((send, fut))
        return fut

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            done = self._store.store_messages([send for send, _ in batch])
        except Exception as exc:  # the store is closed: every waiter is told
            _settle(batch, exc)
            return
        done.add_done_callback(lambda d: _outcomes(batch, d))


def _outcomes(batch: _Waiting, done: asyncio.Future[list[StoredMessage | Exception]]) -> None:
    if done.cancelled():
        _settle(batch, StoreError("the store stopped before these sends were stored"))
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


def _settle(batch: _Waiting, exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)
