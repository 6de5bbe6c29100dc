"""The send side: outbox items -> encrypted `send` frames, and the server's answers to them.

Durable first, network second (docs/design.md, "The client"): items come from the store's
outbox in order, at most MAX_INFLIGHT unanswered. Preparing one needs a session with every
current device of the recipient; when one is missing (or must be renewed after a retry
request, or the server named devices we did not know), ``prepare`` returns ClaimKeys and the
async layer feeds the claimed bundle back through ``keys_claimed``.

A text to a verified contact whose master key changed is not encrypted at all: it is paused
(porch.client.verified) until the user verifies or accepts the new key. Receipts and retry
requests still go (docs/design.md, "Verified contacts").

Group sends (``g:<group id>`` recipients, spec E) are porch.client.core.group_send's: their
destinations are the member accounts, their frames key shares then one shared Megolm body.

Many destinations, one frame (spec A and D). An item goes to the accounts
``destinations_for(state, item)`` names: its recipient and, for texts and read receipts, one's
own account, whose other devices get a ``sent`` copy (read-state sync) in the SAME `send`
frame. Preparing claims keys per account (one ClaimKeys each; the item is encrypted once every
claim is answered), and ``_destination`` encrypts one destination per account. The seam for
group sends: a group item supplies its own account list to ``destinations_for`` and a shared
(Megolm) body to ``frames.send(..., shared=(2, body))``, its device entries then carrying no
ciphertext of their own (``frames.ciphertext(device, registration)``).

The Outbox is three modules: this one prepares and encrypts items, the key claims are
porch.client.core.outbox_claims's (how one's own devices are learnt too), and the server's
answers, with failing and expiring an item, are porch.client.core.outbox_answers's.
"""

from __future__ import annotations

from typing import Any

from porch.client.core import frame_size, frames
from porch.client.core.actions import Action, SendFrame
from porch.client.core.context import CoreState
from porch.client.core.device_fixes import DeviceFix
from porch.client.core.group_send import GroupSends, group_of
from porch.client.core.groups import GroupCrypto
from porch.client.core.outbox_answers import AnswersMixin
from porch.client.core.outbox_claims import KeyClaimsMixin
from porch.client.core.outbox_items import copied as _copied
from porch.client.core.outbox_items import destinations_for, pause_if_unaccepted
from porch.client.store import OutboxItem, PeerDeviceRow
from porch.crypto.content import Sent, encode_content
from porch.crypto.errors import CryptoError
from porch.protocol.codec import b64encode

MAX_INFLIGHT = 128


class Outbox(KeyClaimsMixin, AnswersMixin):
    def __init__(self, state: CoreState, crypto: GroupCrypto) -> None:
        self._state = state
        self.groups = GroupSends(state, crypto, self.encrypt_to)
        self.inflight: dict[str, OutboxItem] = {}
        self.sizes: dict[str, int] = {}  # client id -> its frame's bytes (frame_size.py)
        self.frame_limit: int | None = None  # the server's, once a frame_too_large said it
        self.cursor = 0  # the highest outbox seq sent on this connection
        self.device_fixes: dict[str, DeviceFix] = {}
        # client id -> accounts whose claim is still unanswered
        self._claiming: dict[str, set[str]] = {}
        # One's own other devices were claimed once (so a sent copy finds them).
        self._own_known = False

    def reset(self) -> None:
        """A new connection: everything still in the outbox goes again (same client ids)."""
        self.inflight.clear()
        self.sizes.clear()
        self.cursor = 0
        self.groups.reset()

    def own_devices_changed(self) -> None:
        """One's own device list changed (a device linked while running): list it again."""
        self._own_known = False

    def _accounts(self, item: OutboxItem) -> list[str]:
        if group_of(item.recipient) is not None:
            return self.groups.accounts(item)
        return destinations_for(self._state, item)

    def next_items(self) -> list[OutboxItem]:
        room = MAX_INFLIGHT - len(self.inflight)
        items = self._state.store.pending(self.cursor, room) if room > 0 else []
        return [i for i in items if i.client_id not in self.inflight]

    # Preparing -----------------------------------------------------------------------------

    def prepare(self, item: OutboxItem) -> list[Action]:
        """Encrypt one outbox item for every current device of each destination account, or
        ask for the keys that are missing first (one ClaimKeys per account)."""
        if item.ttl_left(self._state.clock()) == 0:
            return self._expire(item)
        if group_of(item.recipient) is not None:
            refusal = self.groups.refusal(item)
            if refusal is not None:
                return self.fail(item, "not_member", refusal)
        paused = self._pause_if_unaccepted(item)
        if paused:
            return paused
        claims = [
            claim
            for account in self._accounts(item)
            if (claim := self._claim_for(item, account)) is not None
        ]
        if claims:
            self._claiming[item.client_id] = {c.account for c in claims}
            return list(claims)
        return self._encrypt(item)

    def _pause_if_unaccepted(self, item: OutboxItem) -> list[Action]:
        """Pause a text to a verified contact whose key changed; [] to go on."""
        paused = pause_if_unaccepted(self._state, item)
        if paused:
            self.inflight.pop(item.client_id, None)
        return paused

    def _encrypt(self, item: OutboxItem) -> list[Action]:
        """One `send` frame: a destination per account of destinations_for(item), with the
        time the item has left if it disappears (spec §7; its sent copies share the frame)."""
        ttl = item.ttl_left(self._state.clock())
        if ttl == 0:  # the key claims took longer than the timer
            return self._expire(item)
        if group_of(item.recipient) is not None:
            return self._encrypt_group(item, ttl)
        state, recipient = self._state, item.recipient
        if recipient == state.account_id:
            return self._to_self(item, ttl)
        targets = self._ready_devices(recipient)
        if not targets:
            error = f"{recipient[:8]} has no device that can receive messages"
            return self.fail(item, "send_failed", error)
        destinations = [self._destination(recipient, targets, item.content)]
        inner = _copied(item.content)
        if state.account_id in destinations_for(state, item) and inner is not None:
            own = self._ready_devices(state.account_id)
            if own:  # the sent copy (spec D) for one's own other devices
                copy = encode_content(Sent(recipient, inner))
                destinations.append(self._destination(state.account_id, own, copy))
        return self._checked(item, [frames.send(item.client_id, destinations, ttl=ttl)])

    def _encrypt_group(self, item: OutboxItem, ttl: int | None) -> list[Action]:
        """Key shares, then the one shared frame (porch.client.core.group_send)."""
        try:
            built = self.groups.frames(item, ttl)
        except CryptoError as exc:
            return self.fail(item, exc.code, f"the group message could not be encrypted: {exc}")
        if built and built[-1]["id"] == item.client_id:
            return self._checked(item, built)
        # No other device is in the group: nothing leaves, and the item is done.
        self.inflight[item.client_id] = item
        self.cursor = max(self.cursor, item.seq)
        out = [SendFrame(f) for f in built]
        return out + self.on_sent({"id": item.client_id, "ts": self._state.clock()})

    def _to_self(self, item: OutboxItem, ttl: int | None) -> list[Action]:
        """A note to self: one's other devices get it as a sent copy to this account (spec D),
        so it shows as outgoing there as here; with no other device it is done at once."""
        state, inner = self._state, _copied(item.content)
        own = self._ready_devices(state.account_id)
        if inner is not None and own:
            copy = encode_content(Sent(state.account_id, inner))
            destination = self._destination(state.account_id, own, copy)
            return self._checked(item, [frames.send(item.client_id, [destination], ttl=ttl)])
        self.inflight[item.client_id] = item
        self.cursor = max(self.cursor, item.seq)
        return self.on_sent({"id": item.client_id, "ts": state.clock()})

    def _checked(self, item: OutboxItem, built: list[dict[str, Any]]) -> list[Action]:
        """Key shares (if any), then the item's own frame; failed here if that frame is over
        the server's limit, which would refuse it without saying which item (frame_size.py)."""
        size = frame_size.frame_bytes(built[-1])
        if frame_size.over_limit(size, self.frame_limit):
            devices = sum(len(d["devices"]) for d in built[-1].get("destinations", ()))
            why = frame_size.too_large_message(size, self.frame_limit, max(devices, 1))
            return self.fail(item, "frame_too_large", why)
        self.inflight[item.client_id] = item
        self.sizes[item.client_id] = size
        self.cursor = max(self.cursor, item.seq)
        return [*(SendFrame(f) for f in built[:-1]), SendFrame(built[-1], item.client_id)]

    def _ready_devices(self, account: str) -> list[PeerDeviceRow]:
        """The account's known devices with a session, never this one."""
        state = self._state
        return [
            d
            for d in state.store.peer_devices(account)
            if not state.is_me(account, d.device_id)
            and state.olm.has_session((account, d.device_id))
        ]

    def _destination(
        self, account: str, devices: list[PeerDeviceRow], content: bytes
    ) -> dict[str, Any]:
        return frames.destination(account, self.encrypt_to(account, devices, content))

    def encrypt_to(
        self, recipient: str, devices: list[PeerDeviceRow], content: bytes
    ) -> list[dict[str, Any]]:
        state = self._state
        messages = []
        for d in devices:
            ct = state.olm.encrypt((recipient, d.device_id), content)
            messages.append(
                frames.ciphertext(d.device_id, d.registration_id, ct.kind, b64encode(ct.body))
            )
        # The ratchet moved: persist before the ciphertext leaves, so a crash never reuses keys.
        state.save_olm()
        return messages

    def not_sent(self, client_id: str) -> None:
        """The frame for ``client_id`` never left (the connection changed): send it again."""
        item = self.inflight.pop(client_id, None)
        if item is not None:
            self.cursor = min(self.cursor, item.seq - 1)
