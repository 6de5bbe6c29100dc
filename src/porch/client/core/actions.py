"""What the client core asks its async layer to do (docs/design.md, "Client core").

The core never performs I/O: each of its methods returns a list of these, and the async
``Client`` carries them out in order. HTTP calls come back to the core as method calls
(``keys_fetched``, ``keys_claimed``, ...), so the core never waits for the network, as h11
turns bytes into events without a socket of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from porch.client.errors import ClientError
from porch.client.events import Event
from porch.client.store import OutboxItem


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Send ``frame`` on the current connection. ``client_id`` names the outbox item it
    carries: if it cannot leave on the connection it was built for, tell the core
    (``ClientCore.not_sent``)."""

    frame: dict[str, Any]
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class FetchKeys:
    """``GET /v1/keys/{account}``, then ``keys_fetched(account, token, bundle)`` or
    ``keys_fetch_failed(account, token, error)``. Envelopes from ``account`` wait meanwhile;
    those from other senders do not. ``reason`` is "unknown_device" or "refetch"."""

    account: str
    token: int
    reason: str


@dataclass(frozen=True, slots=True)
class ClaimKeys:
    """Claim one-time keys of ``devices`` of ``account`` (None: all its devices), then
    ``keys_claimed(claim, bundle)`` or ``keys_claim_failed(claim, error)``. One item may need
    several (its recipient, one's own account for sent copies; spec D): it is encrypted once
    each is answered. ``for_account`` None means the item's recipient."""

    item: OutboxItem
    devices: tuple[int, ...] | None
    for_account: str | None = None
    # Only list the account's devices (``GET /v1/keys/{account}``, no one-time key is taken):
    # how one's own other devices are found; ``keys_claimed`` then claims those it needs.
    listing: bool = False

    @property
    def account(self) -> str:
        return self.for_account if self.for_account is not None else self.item.recipient


@dataclass(frozen=True, slots=True)
class EmitEvent:
    """Give ``event`` to the application (the Client's event queue)."""

    event: Event


@dataclass(frozen=True, slots=True)
class TopUpKeys:
    """Ask the server how many one-time keys it holds; if few, upload
    ``ClientCore.one_time_keys(count)``."""


@dataclass(frozen=True, slots=True)
class WakeOutbox:
    """Look at the outbox again, after ``delay`` seconds."""

    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class PauseOutbox:
    """The outbox cannot make progress now (the key directory is unreachable, say): stop this
    pass and try again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class SendSettled:
    """The outbox item ``client_id`` is done for whoever waits on it: sent at ``ts``, refused
    (``error`` a SendFailed), or paused until its recipient's new key is accepted (``error`` a
    SendPaused; the item stays in the outbox)."""

    client_id: str
    ts: int = 0
    error: ClientError | None = None


@dataclass(frozen=True, slots=True)
class FetchGroup:
    """``GET /v1/groups/{group_id}`` (a ``group_update`` or the server's ``group_changed``
    said it changed), then ``ClientCore.group_fetched(group)`` or
    ``group_fetch_failed(group_id, error)`` (a 404: this account is no longer a member)."""

    group_id: str


@dataclass(frozen=True, slots=True)
class RotateStateKey:
    """A member left: give the group a new state key (``client.groups.rotate_state_key``).
    Asked of one admin's device only (the lowest admin account id's), so that the leaver
    cannot choose the next key."""

    group_id: str


@dataclass(frozen=True, slots=True)
class ShareStateKey:
    """Someone joined by an invite link: tell the members the group's current state key
    (``client.groups.share_state_key``), since the link may hold an older epoch's (made
    before a member left). Asked of the lowest admin account id's device only."""

    group_id: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the connection without acknowledging what waits (it comes again after the
    reconnect): a transient failure that only a redelivery heals."""

    reason: str


Action = (
    SendFrame
    | FetchKeys
    | ClaimKeys
    | EmitEvent
    | TopUpKeys
    | WakeOutbox
    | PauseOutbox
    | SendSettled
    | FetchGroup
    | RotateStateKey
    | ShareStateKey
    | Reconnect
)
