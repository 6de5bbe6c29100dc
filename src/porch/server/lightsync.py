"""Flag, Inbox and Slots: asyncio.Event, asyncio.Queue and asyncio.Semaphore as a connection
uses them, in a fraction of their memory or time (issue 10, docs/performance.md "Idle
connections").

An asyncio.Event allocates a deque for its waiters when it is made, about 760 bytes with its
block, used or not; an idle connection held five of them (the WebSocket layer's `writable`,
its receive queue's, the outbox's two, the pump's wake-up). A Flag makes its list of waiters
only when someone waits and drops it when set, so an idle connection's flags cost their slots
and, for the one a task sleeps on, one future.
"""

from __future__ import annotations

import asyncio


class Flag:
    __slots__ = ("_loop", "_set", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[None]] | None = None
        # The loop of the first wait, kept: on Python 3.11 `asyncio.get_running_loop()` makes a
        # getpid() system call each time (its fork check), and a connection's writer and
        # reader wait once per envelope and per ack (issue 10, fan-out: 6% of the event loop).
        # A Flag belongs to one connection, which lives on one loop.
        self._loop: asyncio.AbstractEventLoop | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        """Returns True once set, as asyncio.Event.wait does. One future per waiter, so that
        a cancelled waiter (a timeout) cancels only its own."""
        if self._set:
            return True
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self._waiters is None:
            self._waiters = []
        waiters = self._waiters
        waiters.append(fut)
        try:
            await fut
        finally:
            if fut.cancelled():  # still listed (set() had not run): take it out
                waiters.remove(fut)
                if not waiters and self._waiters is waiters:
                    self._waiters = None
        return True


class Inbox:
    """The three calls a WebSocket protocol makes of its asyncio.Queue of ASGI messages
    (put_nowait, get, empty), on a list and a Flag: an asyncio.Queue is four deques, about
    3 KB, per connection. One consumer (the app's `receive`), as ASGI has."""

    __slots__ = ("_items", "_ready")

    def __init__(self) -> None:
        self._items: list[object] = []
        self._ready = Flag()

    def put_nowait(self, item: object) -> None:
        self._items.append(item)
        self._ready.set()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> object:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.pop(0)


class Slots:
    """asyncio.Semaphore as a connection's reader uses it for its pending sends: taken by one
    task, given back from callbacks. Taking one while there is room is a method call, where
    Semaphore.acquire is a coroutine whose locked() scans the waiters with a generator (1.7%
    of the event loop at half of the maximum rate, issue 10)."""

    __slots__ = ("_free", "_room")

    def __init__(self, n: int) -> None:
        self._free = n
        self._room = Flag()

    def try_take(self) -> bool:
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        while self._free <= 0:
            self._room.clear()
            await self._room.wait()
        self._free -= 1

    def release(self) -> None:
        self._free += 1
        self._room.set()
