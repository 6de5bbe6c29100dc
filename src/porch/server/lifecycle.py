"""Components with lifecycles: stores, buses and sweepers are async context managers.

A component writes its life once, as an async generator (`_lifetime`): acquire, start its
tasks in a TaskGroup it enters with `async with`, yield while it serves, then stop its tasks
before it releases what they use. Entering the component runs everything up to the yield;
leaving it runs the rest, with the exception that ended the block, if any. So no TaskGroup is
ever entered or left by hand, a component's tasks are always awaited before its pool or thread
closes, and a task that crashes cancels whoever entered the component (the app's lifespan),
loudly, instead of dying unseen (ARCHITECTURE.md, "Components with lifecycles"; Trio's
structured concurrency).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self


class Component:
    _stack: contextlib.AsyncExitStack | None = None

    def _lifetime(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Override with an @contextlib.asynccontextmanager method."""
        return _nothing()

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self._lifetime())
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        return bool(await stack.__aexit__(exc_type, exc, tb))


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
