"""One handler per content kind, looked up by the content's class.

A handler works in two steps, because the store-before-ack rule (docs/design.md, "The client")
puts whatever must survive a crash into the transaction that also records the envelope as
seen: ``persist`` runs inside that transaction, ``react`` after it commits (events, receipts,
answers). New kinds (media, reactions, group updates) register a handler; a kind without one
is logged and acknowledged, never an error, so an older client survives newer senders.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from porch.client.core.context import CoreState
from porch.client.core.rich import (
    APPLIER,
    RICH_ACTIONS,
    DirectRichHandler,
    expires_at,
    message_event,
    text_extra,
    text_ts,
)
from porch.client.events import ReceiptEvent, TypingEvent
from porch.crypto.content import (
    Content,
    Receipt,
    Retry,
    Sent,
    Text,
    Typing,
    Unknown,
)

log = logging.getLogger("porch.client")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated envelope: where it came from, when the server stored it."""

    id: int
    ts: int
    sender: str
    device: int


class Handler(Protocol):
    def persist(
        self, state: CoreState, env: Envelope, content: Any, db: sqlite3.Connection
    ) -> bool:
        """Write what must be stored before the ack; True when it was new."""
        ...

    def react(self, state: CoreState, env: Envelope, content: Any, new: bool) -> None:
        """After the commit: emit events, queue answers."""
        ...


class _NothingToStore:
    def persist(
        self, state: CoreState, env: Envelope, content: Any, db: sqlite3.Connection
    ) -> bool:
        return True


class TextHandler:
    def persist(
        self, state: CoreState, env: Envelope, content: Text, db: sqlite3.Connection
    ) -> bool:
        # Unique on (peer, direction, client message id): a resend shows once.
        return state.store.add_message(
            env.sender,
            content.id,
            False,
            env.device,
            text_ts(content, env.ts),
            content.body,
            "received",
            db,
            server_ts=env.ts,
            extra=text_extra(content),
            expires_at=expires_at(content, env.ts),
        )

    def react(self, state: CoreState, env: Envelope, content: Text, new: bool) -> None:
        if not new:
            return
        if env.sender != state.account_id:  # our own other devices need no receipt
            state.pending_receipts.setdefault(env.sender, []).append(content.id)
        state.emit(message_event(content, env.sender, env.device, env.ts))


class ReceiptHandler(_NothingToStore):
    def react(self, state: CoreState, env: Envelope, content: Receipt, new: bool) -> None:
        ids = list(content.ids)
        state.store.set_status(env.sender, ids, outgoing=True, status=content.kind)
        # A member's receipt for one's own group texts (porch.client.group_ticks).
        groups = state.store.group_receipt(env.sender, ids, content.kind)
        state.emit(ReceiptEvent(env.sender, content.kind, content.ids, tuple(groups)))


class TypingHandler(_NothingToStore):
    def react(self, state: CoreState, env: Envelope, content: Typing, new: bool) -> None:
        state.emit(TypingEvent(env.sender, content.state == "started"))


class RetryHandler(_NothingToStore):
    def react(self, state: CoreState, env: Envelope, content: Retry, new: bool) -> None:
        state.retrier.answer(env.sender, env.device, content)


class SentHandler:
    """A copy of what this account sent from another of its devices (spec D): a text shows
    as outgoing in the conversation with ``to``; a read receipt marks those received
    messages read here too (read-state sync); a reaction, edit, delete or timer applies as
    this account's (issue 8). From anyone else it means nothing."""

    def persist(
        self, state: CoreState, env: Envelope, content: Sent, db: sqlite3.Connection
    ) -> bool:
        if env.sender == state.account_id and isinstance(content.content, RICH_ACTIONS):
            return APPLIER.persist(state, content.to, env.sender, content.content, db, env.ts)
        if env.sender != state.account_id or not isinstance(content.content, Text):
            return env.sender == state.account_id
        text = content.content
        return state.store.add_message(
            content.to,
            text.id,
            True,
            env.device,
            text_ts(text, env.ts),
            text.body,
            "sent",
            db,
            server_ts=env.ts,
            shown=False,  # `porch recv` prints it, as outgoing
            extra=text_extra(text),
            expires_at=expires_at(text, env.ts),
        )

    def react(self, state: CoreState, env: Envelope, content: Sent, new: bool) -> None:
        if env.sender != state.account_id:
            log.info("ignored a sent copy from another account")
            return
        inner = content.content
        if isinstance(inner, RICH_ACTIONS):
            APPLIER.react(state, content.to, env.sender, inner, new)
            return
        if isinstance(inner, Receipt):
            if inner.kind == "read":
                state.store.set_status(content.to, list(inner.ids), outgoing=False, status="read")
            return
        if new and isinstance(inner, Text):
            state.emit(
                message_event(inner, env.sender, env.device, env.ts, outgoing=True, to=content.to)
            )


class UnknownHandler(_NothingToStore):
    def react(self, state: CoreState, env: Envelope, content: Any, new: bool) -> None:
        kind = content.t if isinstance(content, Unknown) else type(content).__name__
        log.info("ignored content of a kind this version does not know (%s)", kind[:32])


class Handlers:
    """The registry: content class -> handler, with a harmless fallback."""

    def __init__(self) -> None:
        self._by_kind: dict[type, Handler] = {}
        self.fallback: Handler = UnknownHandler()

    def register(self, kind: type, handler: Handler) -> None:
        self._by_kind[kind] = handler

    def for_content(self, content: Content) -> Handler:
        return self._by_kind.get(type(content), self.fallback)


def default_handlers() -> Handlers:
    handlers = Handlers()
    handlers.register(Text, TextHandler())
    handlers.register(Receipt, ReceiptHandler())
    handlers.register(Typing, TypingHandler())
    handlers.register(Retry, RetryHandler())
    handlers.register(Sent, SentHandler())
    handlers.register(Unknown, UnknownHandler())
    for kind in RICH_ACTIONS:
        handlers.register(kind, DirectRichHandler())
    return handlers
