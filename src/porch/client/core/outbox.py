"""The send side: outbox items -> encrypted `send` frames, and the server's answers to them.

Durable first, network second (docs/design.md, "The client"): items come from the store's
outbox in order, at most MAX_INFLIGHT unanswered. Preparing one needs a session with every
current device of the recipient; when one is missing (or must be renewed after a retry
request, or the server named devices we did not know), ``prepare`` returns ClaimKeys and the
async layer feeds the claimed bundle back through ``keys_claimed``.

A text to a verified contact whose master key changed is not encrypted at all: it is paused
(porch.client.verified) until the user verifies or accepts the new key. Receipts and retry
requests still go (docs/design.md, "Verified contacts").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from porch.client.core import frames
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
from porch.client.core.keys import Bundle, start_sessions
from porch.client.errors import (
    ClientError,
    IdentityError,
    RecipientNotFound,
    SendFailed,
    SendPaused,
    ServerError,
)
from porch.client.events import SendFailedEvent, SendPausedEvent
from porch.client.store import OutboxItem, PeerDeviceRow
from porch.client.verified import Verification
from porch.crypto.content import Text, decode_content
from porch.crypto.errors import CryptoError
from porch.protocol.codec import b64encode

log = logging.getLogger("porch.client")

MAX_INFLIGHT = 128
PERMANENT_SEND_ERRORS = {"unknown_recipient", "bad_frame", "frame_too_large", "forbidden"}
DEVICE_SEND_ERRORS = {"mismatched_devices", "stale_devices"}
# How long the outbox waits after the key directory could not be reached.
CLAIM_RETRY_DELAY = 1.0
MAX_FIX_IDS = 1024  # device ids remembered per recipient from one error frame
MAX_FIX_ACCOUNTS = 1000  # accounts read from one error frame (the protocol's bound)


@dataclass(slots=True)
class DeviceFix:
    """What the server said was wrong with our device list for a recipient."""

    missing: set[int] = field(default_factory=set)
    extra: set[int] = field(default_factory=set)
    stale: set[int] = field(default_factory=set)


def _device_ids(value: Any) -> set[int]:
    if not isinstance(value, list):
        return set()
    return {d for d in value[:MAX_FIX_IDS] if isinstance(d, int) and not isinstance(d, bool)}


def _account_fixes(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """(account, its entry) of an error's `accounts` detail (spec A), bounded."""
    if not isinstance(value, list):
        return []
    return [
        (entry["account"], entry)
        for entry in value[:MAX_FIX_ACCOUNTS]
        if isinstance(entry, dict) and isinstance(entry.get("account"), str)
    ]


def _is_text(content: bytes) -> bool:
    try:
        return isinstance(decode_content(content), Text)
    except (ValueError, KeyError):
        return False


class Outbox:
    def __init__(self, state: CoreState) -> None:
        self._state = state
        self.inflight: dict[str, OutboxItem] = {}
        self.cursor = 0  # the highest outbox seq sent on this connection
        self.device_fixes: dict[str, DeviceFix] = {}

    def reset(self) -> None:
        """A new connection: everything still in the outbox goes again (same client ids)."""
        self.inflight.clear()
        self.cursor = 0

    def next_items(self) -> list[OutboxItem]:
        room = MAX_INFLIGHT - len(self.inflight)
        items = self._state.store.pending(self.cursor, room) if room > 0 else []
        return [i for i in items if i.client_id not in self.inflight]

    # Preparing -----------------------------------------------------------------------------

    def prepare(self, item: OutboxItem) -> list[Action]:
        """Encrypt one outbox item for every current device of its recipient, or ask for
        the keys that are missing first."""
        state, recipient = self._state, item.recipient
        paused = self._pause_if_unaccepted(item)
        if paused:
            return paused
        fix = self.device_fixes.pop(recipient, None)
        devices = {d.device_id: d for d in state.store.peer_devices(recipient)}
        if fix is not None:
            for device_id in fix.extra | fix.stale:
                state.store.drop_peer_device(recipient, device_id)
                state.olm.forget_peer((recipient, device_id))
                devices.pop(device_id, None)
        need = {
            d
            for d in devices
            if not state.is_me(recipient, d)
            and (not state.olm.has_session((recipient, d)) or (recipient, d) in state.renew)
        }
        if fix is not None:
            need |= fix.missing | fix.stale
        if not devices or need:
            return [ClaimKeys(item, tuple(sorted(need)) if devices else None)]
        return self._encrypt(item, list(devices.values()))

    def keys_claimed(self, claim: ClaimKeys, bundle: Bundle) -> list[Action]:
        state, recipient = self._state, claim.account
        try:
            if bundle.account_id != recipient:
                raise IdentityError(
                    f"the key directory answered for another account than {recipient[:8]}"
                )
            start_sessions(state, bundle)
        except (IdentityError, CryptoError) as exc:
            return self.fail(claim.item, getattr(exc, "code", "identity"), str(exc))
        # The claim is often where a changed key shows first (a stale device, then new keys).
        paused = self._pause_if_unaccepted(claim.item)
        if paused:
            return paused
        state.renew.difference_update((recipient, d) for d in claim.devices or ())
        # Devices the directory did not give keys for stay out; the server names them, if
        # they exist, in a mismatched_devices error, and they are claimed then.
        devices = [
            d
            for d in state.store.peer_devices(recipient)
            if state.olm.has_session((recipient, d.device_id))
        ]
        return self._encrypt(claim.item, devices)

    def keys_claim_failed(self, claim: ClaimKeys, error: ClientError) -> list[Action]:
        if isinstance(error, (RecipientNotFound, IdentityError, SendFailed)) or (
            isinstance(error, ServerError) and error.code in ("not_found", "bad_request")
        ):
            return self.fail(claim.item, error.code, str(error))
        log.info("outbox waits: %s", error)
        return [PauseOutbox(CLAIM_RETRY_DELAY)]

    def _pause_if_unaccepted(self, item: OutboxItem) -> list[Action]:
        """Pause a text to a verified contact whose key changed; [] to go on."""
        state = self._state
        if state.store.verification(item.recipient) is not Verification.KEY_CHANGED:
            return []
        if not _is_text(item.content):  # receipts and retry requests carry no user content
            return []
        message = (
            f"{state.label(item.recipient)}'s safety number changed since you verified it; "
            "the message waits until the new key is verified or accepted"
        )
        state.store.pause(item.client_id, message)
        self.inflight.pop(item.client_id, None)
        log.info("message %s paused: the recipient's key changed", item.client_id)
        error = SendPaused(message, queued_id=item.client_id)
        return [
            SendSettled(item.client_id, error=error),
            EmitEvent(SendPausedEvent(item.client_id, item.recipient)),
        ]

    def _encrypt(self, item: OutboxItem, devices: list[PeerDeviceRow]) -> list[Action]:
        recipient = item.recipient
        targets = [d for d in devices if not self._state.is_me(recipient, d.device_id)]
        if not targets:
            error = f"{recipient[:8]} has no device that can receive messages"
            return self.fail(item, "send_failed", error)
        messages = self.encrypt_to(recipient, targets, item.content)
        self.inflight[item.client_id] = item
        self.cursor = max(self.cursor, item.seq)
        frame = frames.send(item.client_id, [frames.destination(recipient, messages)])
        return [SendFrame(frame, item.client_id)]

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
        item = self.inflight.pop(client_id, None)
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
        item = self.inflight.pop(ref, None) if isinstance(ref, str) else None
        if item is None:
            log.warning("server error %s: %s", code, message)
            return []
        if code in DEVICE_SEND_ERRORS:
            for account, wrong in _account_fixes(frame.get("accounts")):
                fix = self.device_fixes.setdefault(account, DeviceFix())
                fix.missing.update(_device_ids(wrong.get("missing")))
                fix.extra.update(_device_ids(wrong.get("extra")))
                fix.stale.update(_device_ids(wrong.get("stale")))
            return self._requeue(item)
        if code in PERMANENT_SEND_ERRORS:
            return self.fail(item, code, message)
        # Rate limited, unavailable, internal: try again.
        delay = frame.get("retry_after", 1.0)
        ok = isinstance(delay, (int, float)) and not isinstance(delay, bool) and 0 <= delay <= 3600
        return self._requeue(item, float(delay) if ok else 1.0)

    def _requeue(self, item: OutboxItem, delay: float = 0.0) -> list[Action]:
        self.cursor = min(self.cursor, item.seq - 1)
        return [WakeOutbox(delay)]

    def fail(self, item: OutboxItem, code: str, message: str) -> list[Action]:
        store = self._state.store
        self.inflight.pop(item.client_id, None)
        if _is_text(item.content):  # kept as failed, for `porch outbox`; never resent by itself
            store.fail(item.client_id, code, message)
        else:  # a receipt nobody can act on
            store.dequeue(item.client_id)
        log.warning("message %s not sent: %s (%s)", item.client_id, message, code)
        return [
            SendSettled(item.client_id, error=SendFailed(message, code=code)),
            EmitEvent(SendFailedEvent(item.client_id, item.recipient, code, message)),
        ]
