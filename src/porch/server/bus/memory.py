"""The in-process bus: a dictionary from device to its connection's handler."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from porch.server.bus.base import DeviceEvent, Handler
from porch.server.lifecycle import Component

_Key = tuple[str, int]


class _MemorySubscription:
    def __init__(
        self,
        bus: MemoryBus,
        key: _Key,
        handler: Handler,
        on_replaced: Callable[[], None],
        order: int,
    ) -> None:
        self._bus = bus
        self.key = key
        self.handler = handler
        self.on_replaced = on_replaced
        self.order = order

    def close(self) -> None:
        if self._bus._subs.get(self.key) is self:
            del self._bus._subs[self.key]


class MemoryBus(Component):
    def __init__(self) -> None:
        self._subs: dict[_Key, _MemorySubscription] = {}
        self._account_handlers: list[Callable[[str], None]] = []

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self._subs.clear()

    def subscribe(
        self,
        account_id: str,
        device_id: int,
        handler: Handler,
        on_replaced: Callable[[], None] = lambda: None,
        order: int = 0,
    ) -> _MemorySubscription:
        key = (account_id, device_id)
        old = self._subs.get(key)
        sub = _MemorySubscription(self, key, handler, on_replaced, order)
        if old is not None and old.order > order:
            on_replaced()  # an older connection that finished authenticating later (base.py)
            return sub
        self._subs[key] = sub
        if old is not None:
            old.on_replaced()
        return sub

    async def publish(self, account_id: str, device_id: int, event: DeviceEvent) -> None:
        self.post(account_id, device_id, event)

    def post(self, account_id: str, device_id: int, event: DeviceEvent) -> bool:
        sub = self._subs.get((account_id, device_id))
        if sub is None:
            return False
        sub.handler(event)
        return True

    async def connected(self, account_id: str, device_id: int) -> bool:
        return (account_id, device_id) in self._subs

    def on_account_changed(self, handler: Callable[[str], None]) -> None:
        self._account_handlers.append(handler)

    async def account_changed(self, account_id: str) -> None:
        for handler in self._account_handlers:
            handler(account_id)
