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
ciphertext of their own (``frames.ciphertext(device, registration)``). Own devices are learnt
by listing one's own account once per Outbox (per process; `GET /v1/keys`, which takes no
one-time key) and claiming only those without a session, then from the server's
`mismatched_devices` refusals, which name each wrong account.
"""

from __future__ import annotations

import logging
from typing import Any

from porch.client.core import frame_size, frames
from porch.client.core.actions import (
    Action,
    ClaimKeys,
    EmitEvent,
    PauseOutbox,
    SendFrame,
    SendSettled,
    WakeOutbox,
)
from porch.client.core.context import CoreState
from porch.client.core.device_fixes import DeviceFix, record_fixes
from porch.client.core.group_send import GroupSends, group_of
from porch.client.core.groups import GroupCrypto
from porch.client.core.keys import Bundle, cache_directory, start_sessions
from porch.client.core.outbox_items import EXPIRED, destinations_for, pause_if_unaccepted
from porch.client.core.outbox_items import copied as _copied
from porch.client.core.outbox_items import is_text as _is_text
from porch.client.errors import (
    ClientError,
    IdentityError,
    RecipientNotFound,
    SendFailed,
    ServerError,
)
from porch.client.events import SendFailedEvent
from porch.client.store import OutboxItem, PeerDeviceRow
from porch.crypto.content import Sent, encode_content
from porch.crypto.errors import CryptoError
from porch.failures import reason
from porch.protocol.codec import b64encode

log = logging.getLogger("porch.client")

MAX_INFLIGHT = 128
PERMANENT_SEND_ERRORS = {"unknown_recipient", "bad_frame", "frame_too_large", "forbidden"}
DEVICE_SEND_ERRORS = {"mismatched_devices", "stale_devices"}
# How long the outbox waits after the key directory could not be reached.
CLAIM_RETRY_DELAY = 1.0


class Outbox:
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

    def _optional(self, item: OutboxItem, account: str) -> bool:
        """Whether the item goes without ``account`` when its keys cannot be had: one's own
        (sent copies, and the copies of a note to self, are a courtesy), or a member of a
        group (the others still get it)."""
        return account == self._state.account_id or group_of(item.recipient) is not None

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

    def _claim_for(self, item: OutboxItem, account: str) -> ClaimKeys | None:
        state = self._state
        own = account == state.account_id  # a note to self too: list, then claim the others
        fix = self.device_fixes.pop(account, None)
        devices = {d.device_id: d for d in state.store.peer_devices(account)}
        if fix is not None:
            for device_id in fix.extra | fix.stale:
                state.store.drop_peer_device(account, device_id)
                state.olm.forget_peer((account, device_id))
                devices.pop(device_id, None)
        need = {
            d
            for d in devices
            if not state.is_me(account, d)
            and (not state.olm.has_session((account, d)) or (account, d) in state.renew)
        }
        if fix is not None:
            need |= fix.missing | fix.stale
        if own and not self._own_known:
            return ClaimKeys(item, None, account, listing=True)
        if not devices and not own:  # nothing cached: every device of the account
            return ClaimKeys(item, None, account)
        if need:
            return ClaimKeys(item, tuple(sorted(need)), account)
        return None

    def keys_claimed(self, claim: ClaimKeys, bundle: Bundle) -> list[Action]:
        state, account = self._state, claim.account
        if claim.listing:
            return self._own_listed(claim, bundle)
        try:
            if bundle.account_id != account:
                raise IdentityError(
                    f"the key directory answered for another account than {account[:8]}"
                )
            start_sessions(state, bundle)
        except (IdentityError, CryptoError) as exc:
            if self._optional(claim.item, account):
                log.info("not to %s this time: %s", account[:8], reason(exc))
                return self._claim_done(claim)
            self._claiming.pop(claim.item.client_id, None)
            return self.fail(claim.item, getattr(exc, "code", "identity"), str(exc))
        state.renew.difference_update((account, d) for d in claim.devices or ())
        return self._claim_done(claim)

    def _own_listed(self, claim: ClaimKeys, bundle: Bundle) -> list[Action]:
        """One's own devices, listed: claim keys of the other ones without a session."""
        state, account = self._state, claim.account
        self._own_known = True
        try:
            if bundle.account_id != account:
                raise IdentityError("the key directory answered for another account")
            cache_directory(state, bundle, replace=False)
        except IdentityError as exc:
            log.info("no sent copies this time: %s", reason(exc))
            return self._claim_done(claim)
        need = tuple(
            sorted(
                d.device_id
                for d in bundle.devices
                if not state.is_me(account, d.device_id)
                and not state.olm.has_session((account, d.device_id))
            )
        )
        if need and claim.item.client_id in self._claiming:
            return [ClaimKeys(claim.item, need, account)]  # the account stays awaited
        return self._claim_done(claim)

    def _claim_done(self, claim: ClaimKeys) -> list[Action]:
        if claim.account == self._state.account_id:
            self._own_known = True
        waiting = self._claiming.get(claim.item.client_id)
        if waiting is None:
            return []  # another claim of the item failed it or paused the outbox
        waiting.discard(claim.account)
        if waiting:
            return []  # the other accounts' claims are still out
        del self._claiming[claim.item.client_id]
        # The claim is often where a changed key shows first (a stale device, then new keys).
        paused = self._pause_if_unaccepted(claim.item)
        if paused:
            return paused
        # Devices the directory did not give keys for stay out; the server names them, if
        # they exist, in a mismatched_devices error, and they are claimed then.
        return self._encrypt(claim.item)

    def keys_claim_failed(self, claim: ClaimKeys, error: ClientError) -> list[Action]:
        if claim.account == self._state.account_id:
            # Sent copies (and a note to self's copies) are a courtesy: the message goes
            # without them.
            log.info("no sent copies this time: %s", reason(error))
            return self._claim_done(claim)
        permanent = isinstance(error, (RecipientNotFound, IdentityError, SendFailed)) or (
            isinstance(error, ServerError) and error.code in ("not_found", "bad_request")
        )
        if permanent and self._optional(claim.item, claim.account):
            # A member without keys (deleted, say): the group's other members still get it.
            log.info("group send without %s: %s", claim.account[:8], reason(error))
            return self._claim_done(claim)
        self._claiming.pop(claim.item.client_id, None)
        if permanent:
            return self.fail(claim.item, error.code, str(error))
        log.info("outbox waits: %s", reason(error))
        return [PauseOutbox(CLAIM_RETRY_DELAY)]

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

    # The server's answers ------------------------------------------------------------------

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
