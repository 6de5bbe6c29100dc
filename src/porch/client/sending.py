"""The Client's methods for sending: waiting for the server's acknowledgement, read receipts,
typing, and the outbox's items.

A mixin of porch.client.client.Client, as porch.client.rich and porch.client.trust are; the
attributes below are the Client's. Every content (a text: RichMixin.send_text) goes the one way
RichMixin.send_content takes it: written to the outbox first (porch.client.outgoing), sent by
the runner when it can, and waited for here (``wait_sent``) until the server acknowledged it
(ARCHITECTURE.md, principle 3). Typing indicators are the exception: online-only, never queued.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from porch.client.core.context import new_message_id
from porch.client.waiters import SendResult, Waiters
from porch.crypto.content import Receipt, encode_content

if TYPE_CHECKING:
    from porch.client.core import ClientCore
    from porch.client.errors import ClientError
    from porch.client.runner import Runner
    from porch.client.shared import OutboxEntry
    from porch.client.store import LocalStore


class SendingMixin:
    if TYPE_CHECKING:
        _store: LocalStore
        _runner: Runner
        _core: ClientCore
        _waiters: Waiters
        _ended: ClientError | None
        _tg: asyncio.TaskGroup | None

        @property
        def owner(self) -> bool: ...

    # Sending ---------------------------------------------------------------------------------

    async def wait_sent(self, client_id: str, timeout: float | None = 30.0) -> SendResult:
        """Wait until the server acknowledged a queued message (raises SendFailed if refused,
        Timeout if it is still queued after timeout seconds)."""
        if self._ended is not None:
            raise self._ended
        return await self._waiters.wait(self._store, client_id, timeout)

    async def mark_read(self, peer: str, ids: Sequence[str]) -> None:
        """Mark received messages read here and tell the sender (a read receipt)."""
        changed = self._store.set_status(peer, list(ids), outgoing=False, status="read")
        if not changed:
            return
        if peer.startswith("g:"):
            # A group's read receipts go 1:1 to each author, never to the whole group.
            authors: dict[str, list[str]] = {}
            wanted = set(changed)
            for m in self._store.history(peer, limit=1000):
                if m.client_id in wanted and m.author and not m.outgoing:
                    authors.setdefault(m.author, []).append(m.client_id)
            for author, author_ids in authors.items():
                content = encode_content(Receipt("read", tuple(author_ids)))
                self._runner.perform(self._core.queue_content(author, content))
            return
        content = encode_content(Receipt("read", tuple(changed)))
        self._runner.perform(self._core.queue_content(peer, content))

    async def set_typing(self, peer: str, started: bool) -> bool:
        """Send an online-only typing indicator; False if it could not go now (never queued)."""
        if self._runner.ws is None:
            return False
        frame_id = new_message_id()
        if peer.startswith("g:"):  # Megolm to the group's devices (never stored, spec E)
            frame = self._core.group_typing_frame(peer[2:], started, frame_id)
        else:
            frame = self._core.typing_frame(peer, started, frame_id)
        return frame is not None and await self._runner.send_now(frame)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty (True) or timeout passes (False)."""
        if self._tg is not None and not self.owner:
            return True  # the owner sends the shared outbox, long after this process exits
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._core.sending:
                return True
            await asyncio.sleep(0.05)
        return False

    # The outbox's items -----------------------------------------------------------------------

    def outbox(self) -> list[OutboxEntry]:
        return self._store.outbox_entries()

    def cancel(self, client_ids: list[str] | None) -> list[str]:
        """Cancel queued or failed items (all with None); returns the ids removed."""
        return self._store.cancel(client_ids)

    def retry(self, client_id: str) -> bool:
        done = self._store.retry(client_id)
        self._runner.wake_outbox()
        return done
