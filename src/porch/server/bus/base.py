"""The bus interface.

Publishing after commit is the rule (Zulip's "events after commit"): the database is the
record, the bus is only a wake-up, so a lost event costs latency, never a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from porch.server.domain import Envelope


# Not frozen: one per device of every message (store/records.py, OutgoingCopy).
@dataclass(slots=True)
class DeviceEvent:
    """Something for one connected device: a stored envelope, an online-only frame, or
    neither, which asks the connection to re-read its queue from the store (resync)."""

    envelope: Envelope | None = None
    frame: dict[str, Any] | None = None
    # The device was removed or its number re-registered: its connection must end now.
    revoked: bool = False


Handler = Callable[[DeviceEvent], None]

# Passed to account-change handlers when every cached account may be stale (bus reconnect).
ALL_ACCOUNTS = "*"


class Subscription(Protocol):
    def close(self) -> None: ...


class Bus(Protocol):
    """Entered (`async with bus:`) before use; leaving stops its tasks (lifecycle.py)."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...
    def subscribe(
        self,
        account_id: str,
        device_id: int,
        handler: Handler,
        on_replaced: Callable[[], None],
        order: int = 0,
    ) -> Subscription:
        """Route events for this device to handler until the subscription is closed. A newer
        subscription for the same device replaces the older one, whose on_replaced runs so
        that its connection closes (connection takeover).

        ``order`` says which is newer on this node: the gateway takes it when the auth frame
        arrives, so a connection whose authentication finished later (its store reads came
        back out of order) but began earlier does not take over from the newer one: its own
        on_replaced runs at once and its subscription is never routed to. Across nodes the
        last takeover wins, as before (no shared clock orders two nodes' auth frames)."""
        ...

    async def publish(self, account_id: str, device_id: int, event: DeviceEvent) -> None: ...
    def post(self, account_id: str, device_id: int, event: DeviceEvent) -> bool:
        """publish without a coroutine: both buses hand an event over at once (a local
        handler runs, or the event joins the next Redis pipeline), so the message path
        announces a batch of stored envelopes from a callback (issue 10). True if a
        connection on this node took it (the device is online: no push wake-up needed)."""
        ...

    async def connected(self, account_id: str, device_id: int) -> bool:
        """Whether the device has a connection on any node now (push wakes the others)."""
        ...

    def on_account_changed(self, handler: Callable[[str], None]) -> None:
        """Register a callback run on every node when an account's devices or blocks change."""
        ...

    async def account_changed(self, account_id: str) -> None: ...
