"""A connection's acknowledged ids on their way to the store (issue 10).

The ids of the ack and reject frames that arrive while one delete runs become the next
delete: one store call for however many frames, and the reader never waits for a commit.
At most MAX_QUEUED_ACK_IDS wait; past that the reader waits (back-pressure on a peer that
acknowledges faster than the store deletes). No task: a delete is the store call's future
(the tick's batch, services/tick_batch.py), and its completion starts the next one from a
callback, where a task per delete cost a task's creation and two of its steps per ack frame
(a thousand a group message at 1,000 devices).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

MAX_QUEUED_ACK_IDS = 4096


class AckQueue:
    __slots__ = ("_delete", "_deleting", "_idle", "_ids", "_report", "_room")  # one a connection

    def __init__(
        self,
        delete: Callable[[list[int]], asyncio.Future[Any]],
        report: Callable[[BaseException], None],
    ) -> None:
        self._delete = delete  # starts deleting ids; the future says how it went
        self._report = report  # told of a delete that failed (synchronously: from a callback)
        self._ids: list[int] = []
        self._deleting: asyncio.Future[Any] | None = None
        self._idle: asyncio.Future[None] | None = None  # made only while someone waits
        self._room: asyncio.Event | None = None  # made only when a peer outruns deletes

    async def add(self, ids: list[int]) -> None:
        while len(self._ids) >= MAX_QUEUED_ACK_IDS:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
        self._ids.extend(ids)
        if self._deleting is None:
            self._next()

    async def settled(self) -> None:
        """Every id added so far is deleted (or its failure reported)."""
        while self._deleting is not None:
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
        try:
            deleting = self._delete(ids)
        except Exception as exc:  # refused before it started (the store is closed)
            self._report(exc)
            self._settle()
            return
        self._deleting = deleting
        deleting.add_done_callback(self._done)

    def _done(self, deleting: asyncio.Future[Any]) -> None:
        self._deleting = None
        if deleting.cancelled():
            self._report(asyncio.CancelledError())
        elif (exc := deleting.exception()) is not None:
            self._report(exc)
        if self._ids:
            self._next()
        else:
            self._settle()

    def _settle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)
