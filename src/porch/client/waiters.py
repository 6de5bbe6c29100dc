"""Who waits for which send, and how each wait ends.

A ``wait_sent`` ends when the core settles the item (``SendSettled``: the server's `sent`, or
a refusal), or, for a relay and after a takeover, when the store shows the outcome another
process recorded (docs/design.md, "Several processes on one profile").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from porch.client.core import SendSettled
from porch.client.errors import SendFailed, SendPaused, Timeout
from porch.client.store import LocalStore
from porch.client.verified import PAUSED


@dataclass(frozen=True, slots=True)
class SendResult:
    id: str
    ts: int


class Waiters:
    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[SendResult]] = {}

    def __bool__(self) -> bool:
        return bool(self._futures)

    def settle(self, settled: SendSettled) -> None:
        future = self._futures.get(settled.client_id)
        if future is None or future.done():
            return
        if settled.error is not None:
            future.set_exception(settled.error)
        else:
            future.set_result(SendResult(settled.client_id, settled.ts))

    def fail_all(self, error: BaseException) -> None:
        """The connection ended for good (the device was revoked): no wait can succeed."""
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)

    def poll(self, store: LocalStore) -> None:
        """The owner records each outcome in the store; read it back for what we wait on."""
        for client_id, future in list(self._futures.items()):
            self._from_store(store, client_id, future)

    @staticmethod
    def _from_store(store: LocalStore, client_id: str, future: asyncio.Future[SendResult]) -> None:
        if future.done():
            return
        state = store.outbox_state(client_id)
        if state is not None:
            if state[0] == "failed":
                future.set_exception(
                    SendFailed(state[2] or "refused", code=state[1] or "send_failed")
                )
            elif state[0] == PAUSED:  # recorded by the owner (or before this wait began)
                future.set_exception(SendPaused(state[2] or PAUSED, queued_id=client_id))
            return
        status, ts = store.outgoing_status(client_id) or ("cancelled", 0)
        if status == "pending":  # dequeued, its status not yet raised: look again soon
            return
        if status in ("cancelled", "failed"):
            future.set_exception(SendFailed("cancelled (porch outbox)", code="cancelled"))
        else:
            future.set_result(SendResult(client_id, ts))

    async def wait(self, store: LocalStore, client_id: str, timeout: float | None) -> SendResult:
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._futures[client_id] = future
        self._from_store(store, client_id, future)  # it may have gone already
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise Timeout(
                f"the server did not acknowledge the message within {timeout} s; it stays in "
                "the outbox and is sent the next time this profile connects",
                queued_id=client_id,
            ) from None
        finally:
            self._futures.pop(client_id, None)
