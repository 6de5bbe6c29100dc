"""Queueing what this device sends: one path for texts (with their extras) and the other
contents a user sends (reactions, edits, deletes, timers), to a 1:1 peer or a group.

Durable first (docs/design.md, "The client"): the outbox row and, for a text, its pending
history line are written in one transaction; the outbox sends it when it can. A disappearing
text carries ``exp`` and goes with ``ttl`` equal to it, so the server drops it undelivered at
the same time as the devices delete it (issue 8 spec §3 and §7).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from porch.client.core.context import new_message_id
from porch.client.core.frame_size import MAX_CONTENT_BYTES
from porch.client.core.rich import expires_at, text_extra
from porch.client.errors import MessageTooLong, UsageError
from porch.client.store import LocalStore
from porch.crypto.content import MAX_TEXT_BYTES, Encodable, Text, encode_content
from porch.crypto.errors import CryptoError

_E = TypeVar("_E", bound=Encodable)


def check_length(text: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise MessageTooLong(
            f"the message is {size:,} bytes; the limit is {MAX_TEXT_BYTES:,} bytes "
            "(64 KiB): shorten it or split it into several"
        )


def with_timer(content: _E, seconds: int) -> _E:
    """A text sent while the conversation's timer is on disappears after it."""
    if isinstance(content, Text) and seconds and content.expires is None:
        return replace(content, expires=seconds)
    return content


def queue_outgoing(
    store: LocalStore,
    peer: str,
    content: Encodable,
    *,
    device_id: int,
    me: str,
    now: int,
    ttl: int | None = None,
) -> str:
    """Queue ``content`` for ``peer`` (an account id, or "g:<group id>"), recording a text in
    history as pending; returns the outbox item's client id (a text's own id)."""
    if isinstance(content, Text):
        check_length(content.body)
        if ttl is None:
            ttl = content.expires
    try:
        encoded = encode_content(content)
    except CryptoError as exc:  # invalid Unicode, an out-of-bounds field
        raise UsageError(f"cannot send that: {exc.message}") from None
    if len(encoded) > MAX_CONTENT_BYTES:  # encrypted per device, it would not fit a frame
        raise MessageTooLong(
            f"the message is {len(encoded):,} bytes with its attachment pointers and "
            f"previews; the limit is {MAX_CONTENT_BYTES:,}: send fewer attachments at once "
            "or a shorter text"
        )
    client_id = content.id if isinstance(content, Text) else new_message_id()
    with store.transaction() as db:
        store.enqueue(client_id, peer, encoded, False, now, ttl=ttl)
        if isinstance(content, Text):
            store.add_message(
                peer,
                content.id,
                True,
                device_id,
                content.ts,
                content.body,
                "pending",
                db,
                author=me if peer.startswith("g:") else None,
                extra=text_extra(content),
                expires_at=expires_at(content),
            )
            if peer.startswith("g:"):  # whose receipts make its ticks (group_ticks.py)
                members = store.group_members(peer.removeprefix("g:"))
                store.record_group_recipients(
                    peer, content.id, [m.account_id for m in members if m.account_id != me], db
                )
    return client_id
