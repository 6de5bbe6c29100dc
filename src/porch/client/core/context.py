"""What the parts of the client core share: the store, the Olm machine, what waits to go out.

Sans-IO (docs/design.md, "Client core"): the local store is synchronous SQLite in the profile
directory, kept inside the core as h11 keeps its own state; everything on the network goes out
as an action (porch.client.core.actions).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable

from porch.client import retry
from porch.client.core.actions import Action, EmitEvent, WakeOutbox
from porch.client.events import DecryptionFailed, Event
from porch.client.store import LocalStore
from porch.crypto.olm import OlmMachine

log = logging.getLogger("porch.client")


def new_message_id() -> str:
    """A client message id: 16 random base64url characters, never starting with `-`, so that
    an id (or its short prefix) typed after `porch reply PEER` is not read as an option."""
    while True:
        token = secrets.token_urlsafe(12)
        if not token.startswith("-"):
            return token


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CoreState:
    def __init__(
        self,
        store: LocalStore,
        olm: OlmMachine,
        account_id: str,
        device_id: int,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store, self.olm = store, olm
        self.account_id, self.device_id = account_id, device_id
        self.clock = clock
        self.out: list[Action] = []
        # Envelope ids stored and ready to acknowledge; rejected ones by reason (`reject`).
        self.pending_acks: list[int] = []
        self.pending_rejects: dict[str, list[int]] = {}
        # Delivery receipts to send, by sender: batched like the acks.
        self.pending_receipts: dict[str, list[str]] = {}
        # Peer devices whose next message must start a new Olm session (a retry request).
        self.renew: set[tuple[str, int]] = set()
        self.retrier = retry.Retrier(
            lambda: self.store,
            device_id,
            self.queue_content,
            lambda peer, device: self.renew.add((peer, device)),
            clock,
        )

    def take(self) -> list[Action]:
        """The actions collected since the last call, in order."""
        out, self.out = self.out, []
        return out

    def emit(self, event: Event) -> None:
        self.out.append(EmitEvent(event))

    def queue_content(self, recipient: str, content: bytes, ttl: int | None = None) -> None:
        """Put a content into the durable outbox (a receipt, a retry request, a resend; ttl:
        a disappearing message's time left, spec §7)."""
        self.store.enqueue(
            secrets.token_urlsafe(12), recipient, content, False, self.clock(), ttl=ttl
        )
        self.out.append(WakeOutbox())

    def is_me(self, account_id: str, device_id: int) -> bool:
        return account_id == self.account_id and device_id == self.device_id

    def label(self, account_id: str) -> str:
        return "me" if account_id == self.account_id else self.store.contact_label(account_id)

    def ack(self, envelope_id: int) -> None:
        if envelope_id:  # id 0 names no envelope the server could delete
            self.pending_acks.append(envelope_id)

    def refuse(
        self, envelope_id: int, reason: str, sender: str, device: int, detail: str = ""
    ) -> None:
        """Reject an envelope that can never be taken (docs/protocol.md, "Delivery"), and say
        so: it must neither stop the queue nor loop through reconnects."""
        if envelope_id:
            self.pending_rejects.setdefault(reason, []).append(envelope_id)
        self.emit(DecryptionFailed(sender, device, f"{reason}: {detail}" if detail else reason))

    def save_olm(self) -> None:
        with self.store.transaction() as db:
            self.persist_olm(db)

    def persist_olm(self, db: sqlite3.Connection) -> None:
        dirty = self.olm.dirty_peers()
        if dirty:
            self.store.save_sessions({p: self.olm.pickle_sessions(p) for p in dirty}, db)
        if self.olm.account_dirty or dirty:
            self.store.put_pickle("olm_account", self.olm.pickle_account(), db)
        self.olm.clear_dirty()
