"""Receiving group messages: kind-2 envelopes and the group contents (spec E).

A kind-2 envelope carries one Megolm message (porch.crypto.group_message) from the device that
sent it; GroupCrypto.decrypt opens it with the inbound session that very device shared over
Olm. A message it cannot open (no key from that device yet: a member who joined later must not
read what came before; a replay; tampering) is acknowledged and reported as DecryptionFailed
with the reason, never parked: a key that belongs before it was committed before it by the
sender's connection (group_send), so it would have come first. No retry is asked for.

Contents inside Megolm: a text (stored in ``g:<group>`` with its author; this account's own
texts from its other devices are stored as outgoing, the sent copy of a group send), a
reaction, edit or delete (porch.client.core.rich), a
``group_update`` (GroupUpdated, and the group is fetched again), a ``group_state_key`` and
typing (online only, never stored). Over Olm: ``group_key`` (GroupCrypto.receive_key),
``group_state_key`` and ``group_update``. Delivery receipts for group texts go 1:1 to the
author, never to the whole group.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from porch.client import retry
from porch.client.core.context import CoreState
from porch.client.core.group_sync import GroupSync
from porch.client.core.groups import GroupCrypto
from porch.client.core.handlers import Envelope, Handlers
from porch.client.core.rich import (
    GroupRichHandler,
    expires_at,
    message_event,
    text_extra,
    text_ts,
)
from porch.client.events import DecryptionFailed, TypingEvent
from porch.crypto.content import (
    Delete,
    Edit,
    GroupKey,
    GroupStateKey,
    GroupUpdate,
    Reaction,
    Text,
    Typing,
)
from porch.crypto.errors import CryptoError
from porch.crypto.group_message import decode_group_message
from porch.failures import reason
from porch.protocol.codec import b64decode

log = logging.getLogger("porch.client")


def group_peer(group_id: str) -> str:
    return "g:" + group_id


class GroupKeyHandler:
    """A Megolm session shared with this device over Olm."""

    def __init__(self, crypto: GroupCrypto) -> None:
        self._crypto = crypto

    def persist(
        self, state: CoreState, env: Envelope, content: GroupKey, db: sqlite3.Connection
    ) -> bool:
        try:
            return self._crypto.receive_key(env.sender, env.device, content)
        except CryptoError as exc:  # a key that does not verify is dropped, and said so
            log.info(
                "a group key from %s/%s was refused: %s", env.sender[:8], env.device, reason(exc)
            )
            state.emit(DecryptionFailed(env.sender, env.device, f"group key: {exc}", False, env.ts))
            return False

    def react(self, state: CoreState, env: Envelope, content: GroupKey, new: bool) -> None:
        return None


class GroupStateKeyHandler:
    def __init__(self, crypto: GroupCrypto, sync: GroupSync) -> None:
        self._crypto, self._sync = crypto, sync

    def persist(
        self, state: CoreState, env: Envelope, content: GroupStateKey, db: sqlite3.Connection
    ) -> bool:
        return self._crypto.receive_state_key(content)

    def react(self, state: CoreState, env: Envelope, content: GroupStateKey, new: bool) -> None:
        if new:  # the state may open now (a new member) or under a new epoch
            self._sync.fetch(content.group)


class GroupUpdateHandler:
    def __init__(self, sync: GroupSync) -> None:
        self._sync = sync

    def persist(
        self, state: CoreState, env: Envelope, content: GroupUpdate, db: sqlite3.Connection
    ) -> bool:
        return True

    def react(self, state: CoreState, env: Envelope, content: GroupUpdate, new: bool) -> None:
        if not new:  # a replayed update was said once already
            return
        # A claim until the fetch bears it out (GroupSync.told): GroupUpdated comes from there.
        self._sync.told(env.sender, content)


class GroupTextHandler:
    def persist(
        self, state: CoreState, env: Envelope, content: Text, db: sqlite3.Connection
    ) -> bool:
        assert content.group is not None  # GroupCrypto.decrypt checked it names its group
        outgoing = env.sender == state.account_id
        return state.store.add_message(
            group_peer(content.group),
            content.id,
            outgoing,
            env.device,
            text_ts(content, env.ts),
            content.body,
            "sent" if outgoing else "received",
            db,
            server_ts=env.ts,
            author=env.sender,
            shown=False if outgoing else None,  # `porch recv` prints a sent copy, as outgoing
            extra=text_extra(content),
            expires_at=expires_at(content, env.ts),
        )

    def react(self, state: CoreState, env: Envelope, content: Text, new: bool) -> None:
        if not new:
            return
        outgoing = env.sender == state.account_id
        if not outgoing:  # the delivery receipt goes to the author alone
            state.pending_receipts.setdefault(env.sender, []).append(content.id)
        state.emit(
            message_event(
                content, env.sender, env.device, env.ts, group=content.group, outgoing=outgoing
            )
        )


class GroupTypingHandler:
    def __init__(self, group: str) -> None:
        self.group = group

    def persist(
        self, state: CoreState, env: Envelope, content: Typing, db: sqlite3.Connection
    ) -> bool:
        return True

    def react(self, state: CoreState, env: Envelope, content: Typing, new: bool) -> None:
        state.emit(TypingEvent(env.sender, content.state == "started", group=self.group))


class GroupReceiver:
    """Kind-2 envelopes: decrypt with the sender device's session, hand to a handler."""

    def __init__(self, state: CoreState, crypto: GroupCrypto, sync: GroupSync) -> None:
        self._state, self._crypto = state, crypto
        self.handlers = Handlers()  # contents that may travel inside a group session
        self.handlers.register(Text, GroupTextHandler())
        self.handlers.register(GroupUpdate, GroupUpdateHandler(sync))
        self.handlers.register(GroupStateKey, GroupStateKeyHandler(crypto, sync))
        for kind in (Reaction, Edit, Delete):  # issue 8; a group's timer is in its state
            self.handlers.register(kind, GroupRichHandler())

    def take(self, env: Envelope, frame: dict[str, Any]) -> None:
        state = self._state
        group = None
        try:
            body = b64decode(str(frame["body"]))
            group = decode_group_message(body).group_id
            result = self._crypto.decrypt(env.sender, env.device, body)
        except (CryptoError, ValueError) as exc:
            self._undecryptable(env, group, str(exc))
            return
        if isinstance(result.content, GroupStateKey) and result.content.group != group:
            self._undecryptable(env, group, "a group state key names another group")
            return
        content = result.content
        if result.closed and not isinstance(content, GroupUpdate):
            # A session from before its sender went (GroupSync.fetched): only its update
            # (a leaver's own `leave`, judged by GroupSync.plausible) is let through.
            self._undecryptable(
                env, group, "sent by someone who is no longer in the group: not shown"
            )
            return
        if isinstance(content, Typing):
            handler: Any = GroupTypingHandler(result.group_id)
        else:
            handler = self.handlers.for_content(content)
        with state.store.transaction() as db:
            self._crypto.persist(db)
            new = False if result.duplicate else handler.persist(state, env, content, db)
            if env.id:
                state.store.mark_seen(env.id, env.ts, db)
        state.ack(env.id)
        handler.react(state, env, content, new)

    def _undecryptable(self, env: Envelope, group: str | None, reason: str) -> None:
        state = self._state
        log.info(
            "could not decrypt a group message from %s/%s: %s", env.sender[:8], env.device, reason
        )
        with state.store.transaction() as db:
            self._crypto.persist(db)
            if group is not None:
                state.store.add_message(
                    group_peer(group),
                    retry.placeholder_id(env.device, env.ts),
                    False,
                    env.device,
                    env.ts,
                    retry.placeholder_text(state.label(env.sender), False),
                    retry.UNDECRYPTABLE,
                    db,
                    author=env.sender,
                )
            if env.id:
                state.store.mark_seen(env.id, env.ts, db)
        state.ack(env.id)
        state.emit(DecryptionFailed(env.sender, env.device, reason, False, env.ts))
