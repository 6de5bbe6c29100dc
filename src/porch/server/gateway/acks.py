"""A connection's acknowledged ids on their way to the store (issue 10).

The ids of the ack and reject frames that arrive while one delete runs become the next
delete: one store call for however many frames, and the reader never waits for a commit.
At most MAX_QUEUED_ACK_IDS wait; past that the reader waits (back-pressure on a peer that
acknowledges faster than the store deletes). A task runs only while there is a delete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from porch.protocol.errors import ProtocolError

MAX_QUEUED_ACK_IDS = 4096


class AckQueue:
    __slots__ = ("_delete", "_deleter", "_ids", "_report", "_room")  # one per connection

    def __init__(
        self,
        delete: Callable[[list[int]], Awaitable[None]],
        report: Callable[[ProtocolError], Awaitable[None]],
    ) -> None:
        self._delete = delete  # deletes ids, raising ProtocolError when it cannot
        self._report = report  # tells the client
        self._ids: list[int] = []
        self._deleter: asyncio.Task[None] | None = None
        self._room: asyncio.Event | None = None  # made only when a peer outruns deletes

    async def add(self, ids: list[int], tg: asyncio.TaskGroup) -> None:
        while len(self._ids) >= MAX_QUEUED_ACK_IDS:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
        self._ids.extend(ids)
        if self._deleter is None:
            self._deleter = tg.create_task(self._run())

    async def settled(self) -> None:
        """Every id added so far is deleted (or its failure reported)."""
        if self._deleter is not None:
            await asyncio.wait([self._deleter])  # never cancels the delete

    def left(self) -> list[int]:
        """The ids not yet being deleted (the session is ending): taken from the queue."""
        ids, self._ids = self._ids, []
        return ids

    async def _run(self) -> None:
        try:
            while self._ids:
                ids, self._ids = self._ids, []
                if self._room is not None:
                    self._room.set()
                try:
                    await self._delete(ids)
                except ProtocolError as exc:
                    await self._report(exc)
        finally:
            self._deleter = None
