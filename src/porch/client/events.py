"""What a Client's event iterator yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from porch.crypto.rich import Attachment, Quote


@dataclass(frozen=True, slots=True)
class Message:
    """A text message, decrypted and stored locally before it was acknowledged."""

    id: str
    sender: str
    sender_device: int
    text: str
    ts: int  # the sender's clock, ms
    server_ts: int  # when the server stored it, ms
    group: str | None = None  # the group id for a group text (history peer "g:<id>")
    # A sent copy (spec D): this account wrote it on another device, ``to`` that account.
    outgoing: bool = False
    to: str | None = None
    # Issue 8 (docs/protocol.md, "Rich contents"): what the text carried besides its body.
    attachments: tuple[Attachment, ...] = ()
    reply: Quote | None = None
    forwarded: bool = False
    expires_at: int | None = None  # ms: a disappearing message is removed then


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    sender: str
    kind: Literal["delivered", "read"]
    ids: tuple[str, ...]
    # Group conversations ("g:<group id>") where these ids' ticks rose (group_ticks.py).
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TypingEvent:
    sender: str
    started: bool
    group: str | None = None  # typing in a group conversation (online only, spec E)


@dataclass(frozen=True, slots=True)
class SendFailedEvent:
    id: str
    recipient: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SendPausedEvent:
    """A message to a verified contact whose key changed waits in the outbox (``paused``)
    until the user verifies or accepts the new key."""

    id: str
    recipient: str


@dataclass(frozen=True, slots=True)
class IdentityChanged:
    """A contact's master key changed (they re-registered); their safety number changed too."""

    account_id: str


@dataclass(frozen=True, slots=True)
class DevicesChanged:
    """A contact's signed device list changed (a device linked or removed); messages now go
    to exactly the devices it lists. Not emitted for the first list seen."""

    account_id: str
    added: tuple[int, ...]
    removed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DecryptionFailed:
    """A message could not be decrypted, even with the sender's keys fetched afresh. History
    holds a placeholder; with retry_requested the sender was asked to resend it."""

    sender: str
    sender_device: int
    reason: str
    retry_requested: bool = False
    server_ts: int = 0


@dataclass(frozen=True, slots=True)
class GroupUpdated:
    """A member changed a group (a ``group_update`` content, spec E): ``by`` did ``action``
    (create, add, remove, leave, promote, demote, join, state, settings) to ``targets``."""

    group: str
    revision: int
    by: str
    action: str
    targets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReactionChanged:
    """``reactor`` reacted to message ``id`` by ``author`` in ``peer``'s conversation (history
    peer: an account id, or "g:<group id>"); an empty emoji means the reaction was removed."""

    peer: str
    id: str
    author: str
    reactor: str
    emoji: str


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """``author`` edited message ``id``: ``text`` is its body now (history keeps the rest)."""

    peer: str
    id: str
    author: str
    text: str
    ts: int


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    """``author`` deleted message ``id`` for everyone (history shows a "deleted" marker), or,
    with ``expired``, a disappearing message's time came (it is gone from history)."""

    peer: str
    id: str
    author: str
    expired: bool = False


@dataclass(frozen=True, slots=True)
class TimerChanged:
    """The conversation's disappearing-message timer is now ``seconds`` (0: off), set by
    ``by`` ("" when a group fetch could not tell who)."""

    peer: str
    seconds: int
    by: str


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    connected: bool


@dataclass(frozen=True, slots=True)
class Drained:
    """Everything queued for this device while it was offline has been delivered."""


Event = (
    Message
    | ReceiptEvent
    | TypingEvent
    | SendFailedEvent
    | SendPausedEvent
    | IdentityChanged
    | DevicesChanged
    | DecryptionFailed
    | GroupUpdated
    | ReactionChanged
    | MessageEdited
    | MessageDeleted
    | TimerChanged
    | ConnectionChanged
    | Drained
)
