"""A connection's acknowledged ids on their way to the store (issue 10).

The ids of the ack and reject frames that arrive while one delete runs become the next
delete: one store call for however many frames, and the reader never waits for a commit.
At most MAX_QUEUED_ACK_IDS wait; past that the reader waits (back-pressure on a peer that
acknowledges faster than the store deletes). No task and no future: a delete joins the
tick's batch (services/tick_batch.py) with a callback, which the batch calls as it is answered
and which starts the next delete; a task per delete cost a task's creation and two of its
steps per ack frame (a thousand a group message at 1,000 devices), and a future per delete its
creation and two scheduled callbacks (2026-12-01, docs/performance.md, "Fan-out").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_QUEUED_ACK_IDS = 4096

#: Starts deleting ids; calls its second argument with the count deleted, or the exception,
#: once (on the event loop, from the batch's callback).
Delete = Callable[[list[int], Callable[[int | BaseException], None]], None]


class AckQueue:
    __slots__ = ("_delete", "_deleting", "_idle", "_ids", "_report", "_room")  # one a connection

    def __init__(
        self,
        delete: Delete,
        report: Callable[[BaseException], None],
    ) -> None:
        self._delete = delete
        self._report = report  # told of a delete that failed (synchronously: from a callback)
        self._ids: list[int] = []
        self._deleting = False
        self._idle: asyncio.Future[None] | None = None  # made only while someone waits
        self._room: asyncio.Event | None = None  # made only when a peer outruns deletes

    def add_now(self, ids: list[int]) -> bool:
        """add without waiting, if there is room (the common case: no coroutine per ack
        frame); False if the caller must `await add(ids)`."""
        if len(self._ids) >= MAX_QUEUED_ACK_IDS:
            return False
        self._ids.extend(ids)
        if not self._deleting:
            self._next()
        return True

    async def add(self, ids: list[int]) -> None:
        while len(self._ids) >= MAX_QUEUED_ACK_IDS:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
        self._ids.extend(ids)
        if not self._deleting:
            self._next()

    async def settled(self) -> None:
        """Every id added so far is deleted (or its failure reported)."""
        while self._deleting:
            if self._idle is None:
                self._idle = asyncio.get_running_loop().create_future()
            # Shielded: a waiter that is cancelled leaves the future for the others.
            await asyncio.shield(self._idle)

    def left(self) -> list[int]:
        """The ids not yet being deleted (the session is ending): taken from the queue."""
        ids, self._ids = self._ids, []
        return ids

    def _next(self) -> None:
        ids, self._ids = self._ids, []
        if self._room is not None:
            self._room.set()
        self._deleting = True
        try:
            self._delete(ids, self._done)
        except Exception as exc:  # refused before it started (the store is closed)
            self._deleting = False
            self._report(exc)
            self._settle()

    def _done(self, outcome: int | BaseException) -> None:
        self._deleting = False
        if isinstance(outcome, BaseException):
            self._report(outcome)
        if self._ids:
            self._next()
        else:
            self._settle()

    def _settle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)
