"""The server's answers to the outbox's frames (porch.client.core.outbox): `sent` settles an
item, an `error` requeues it (device fixes, rate limits) or fails it, and a failed or expired
item is settled here.

A mixin of porch.client.core.outbox.Outbox; the attributes below are the Outbox's. Separate
because this is the receiving half of sending: it reads the in-flight items the preparing half
(outbox.py) and the key claims (outbox_claims.py) left, and ends them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from porch.client.core import frame_size
from porch.client.core.actions import Action, EmitEvent, SendSettled, WakeOutbox
from porch.client.core.device_fixes import record_fixes
from porch.client.core.outbox_items import EXPIRED
from porch.client.core.outbox_items import is_text as _is_text
from porch.client.errors import SendFailed
from porch.client.events import SendFailedEvent

if TYPE_CHECKING:
    from porch.client.core.context import CoreState
    from porch.client.core.device_fixes import DeviceFix
    from porch.client.core.group_send import GroupSends
    from porch.client.store import OutboxItem

log = logging.getLogger("porch.client")

PERMANENT_SEND_ERRORS = {"unknown_recipient", "bad_frame", "frame_too_large", "forbidden"}
DEVICE_SEND_ERRORS = {"mismatched_devices", "stale_devices"}


class AnswersMixin:
    if TYPE_CHECKING:
        _state: CoreState
        groups: GroupSends
        inflight: dict[str, OutboxItem]
        sizes: dict[str, int]
        frame_limit: int | None
        cursor: int
        device_fixes: dict[str, DeviceFix]

    def on_sent(self, frame: dict[str, Any]) -> list[Action]:
        store = self._state.store
        client_id = str(frame.get("id"))
        if self.groups.on_sent(client_id):
            return []  # a key share: its devices hold the session now
        item = self.inflight.pop(client_id, None)
        self.sizes.pop(client_id, None)
        recipient = store.dequeue(client_id)
        ts = frame.get("ts", 0)
        ts = ts if isinstance(ts, int) and not isinstance(ts, bool) and ts >= 0 else 0
        if recipient is not None:
            store.set_status(recipient, [client_id], outgoing=True, status="sent", ts=ts)
        out: list[Action] = [SendSettled(client_id, ts)]
        if item is not None:
            out.append(WakeOutbox())
        return out

    def on_error(self, frame: dict[str, Any]) -> list[Action]:
        code, message, ref = str(frame.get("code")), str(frame.get("message")), frame.get("ref")
        if isinstance(ref, str) and self.groups.on_error(ref, code in DEVICE_SEND_ERRORS):
            # A key share refused: the message frame after it answers for the item.
            log.info("a group key share was refused: %s", code)
            if code not in DEVICE_SEND_ERRORS:
                return []
            record_fixes(self.device_fixes, frame)
            return []
        item = self.inflight.pop(ref, None) if isinstance(ref, str) else None
        if item is None and code == "frame_too_large":
            return self._too_large_for(frame_size.announced_limit(frame))
        if item is None:
            log.warning("server error %s: %s", code, message)
            return []
        if code in DEVICE_SEND_ERRORS:
            record_fixes(self.device_fixes, frame)
            return self._requeue(item)
        if code in PERMANENT_SEND_ERRORS:
            return self.fail(item, code, message)
        # Rate limited, unavailable, internal: try again.
        delay = frame.get("retry_after", 1.0)
        ok = isinstance(delay, (int, float)) and not isinstance(delay, bool) and 0 <= delay <= 3600
        return self._requeue(item, float(delay) if ok else 1.0)

    def _too_large_for(self, limit: int | None) -> list[Action]:
        """A ref-less frame_too_large: learn the limit, fail the in-flight frames over it."""
        self.frame_limit = limit or self.frame_limit
        out: list[Action] = []
        for item in list(self.inflight.values()):
            size = self.sizes.get(item.client_id, 0)
            if frame_size.over_limit(size, self.frame_limit):
                why = frame_size.too_large_message(size, self.frame_limit, 1)
                out += self.fail(item, "frame_too_large", why)
        if not out:
            log.info("the server refused a frame as too large (limit %s)", limit)
        return out

    def _requeue(self, item: OutboxItem, delay: float = 0.0) -> list[Action]:
        self.cursor = min(self.cursor, item.seq - 1)
        return [WakeOutbox(delay)]

    def fail(self, item: OutboxItem, code: str, message: str) -> list[Action]:
        store = self._state.store
        self.inflight.pop(item.client_id, None)
        self.sizes.pop(item.client_id, None)
        if _is_text(item.content):  # kept as failed, for `porch outbox`; never resent by itself
            store.fail(item.client_id, code, message)
        else:  # a receipt nobody can act on
            store.dequeue(item.client_id)
        log.warning("message %s not sent: %s (%s)", item.client_id, message, code)
        return [
            SendSettled(item.client_id, error=SendFailed(message, code=code)),
            EmitEvent(SendFailedEvent(item.client_id, item.recipient, code, message)),
        ]

    def _expire(self, item: OutboxItem) -> list[Action]:
        """A disappearing message whose timer ran out before it left (spec §7): failed with
        code `expired`, and its content not kept, not even as a failed outbox row."""
        out = self.fail(item, "expired", EXPIRED)
        self._state.store.dequeue(item.client_id)
        return out
