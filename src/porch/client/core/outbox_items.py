"""What an outbox item is, for the outbox (porch.client.core.outbox): whether it is something
the user wrote, what one's own other devices get a copy of, and which accounts it goes to."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from porch.client.core.actions import Action, EmitEvent, SendSettled
from porch.client.core.rich import USER_KINDS, RichAction
from porch.client.errors import SendPaused
from porch.client.events import SendPausedEvent
from porch.client.verified import Verification
from porch.crypto.content import Receipt, Text, decode_content

if TYPE_CHECKING:
    from porch.client.core.context import CoreState
    from porch.client.store import OutboxItem

log = logging.getLogger("porch.client")

# Why a disappearing message that never left was dropped (spec §7).
EXPIRED = (
    "the message disappeared before it could be sent (its disappearing-message timer ran out"
    " while it waited to go); send it again if it is still wanted"
)


def copied(content: bytes) -> Text | Receipt | RichAction | None:
    """What one's own other devices get a `sent` copy of: what the user wrote (USER_KINDS)
    and read receipts (typing is ephemeral, delivered receipts and retries per device)."""
    try:
        decoded = decode_content(content)
    except (ValueError, KeyError):
        return None
    if isinstance(decoded, USER_KINDS) or (isinstance(decoded, Receipt) and decoded.kind == "read"):
        return decoded
    return None


def destinations_for(state: CoreState, item: OutboxItem) -> list[str]:
    """The accounts a 1:1 outbox item goes to, recipient first (spec D): its recipient, and
    one's own account for what is copied to one's other devices. (A group item's are its
    members: GroupSends.accounts.)"""
    accounts = [item.recipient]
    if item.recipient != state.account_id and copied(item.content) is not None:
        accounts.append(state.account_id)
    return accounts


def is_text(content: bytes) -> bool:
    try:
        return isinstance(decode_content(content), USER_KINDS)
    except (ValueError, KeyError):
        return False


def pause_if_unaccepted(state: CoreState, item: OutboxItem) -> list[Action]:
    """Pause a text to a verified contact whose key changed (docs/design.md, "Verified
    contacts"): stored as paused with the reason, settled with SendPaused; [] to go on."""
    if state.store.verification(item.recipient) is not Verification.KEY_CHANGED:
        return []
    if not is_text(item.content):  # receipts and retry requests carry no user content
        return []
    message = (
        f"{state.label(item.recipient)}'s safety number changed since you verified it; "
        "the message waits until the new key is verified or accepted"
    )
    state.store.pause(item.client_id, message)
    log.info("message %s paused: the recipient's key changed", item.client_id)
    error = SendPaused(message, queued_id=item.client_id)
    return [
        SendSettled(item.client_id, error=error),
        EmitEvent(SendPausedEvent(item.client_id, item.recipient)),
    ]
