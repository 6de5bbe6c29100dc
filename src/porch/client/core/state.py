"""ClientCore: the client's state machine, with no I/O (docs/design.md, "Client core").

Decoded server frames go in (``receive``), actions come out (porch.client.core.actions); the
answers to the HTTP calls the actions ask for come back in as method calls. No asyncio, no
HTTP, no sockets, as in h11's ``Connection``; the async ``Client`` is a thin layer around it.
The TypeScript client mirrors the same shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from porch.client.core import frames
from porch.client.core.actions import Action, ClaimKeys, EmitEvent, SendFrame, TopUpKeys
from porch.client.core.context import CoreState, now_ms
from porch.client.core.group_receive import (
    GroupKeyHandler,
    GroupReceiver,
    GroupStateKeyHandler,
    GroupUpdateHandler,
)
from porch.client.core.group_sync import GroupSync
from porch.client.core.groups import MEGOLM_PICKLE_LABEL, GroupCrypto
from porch.client.core.handlers import Handlers, default_handlers
from porch.client.core.keys import Bundle, verify_bundle
from porch.client.core.outbox import Outbox
from porch.client.core.receive import MAX_PARKED, Receiver
from porch.client.errors import ClientError
from porch.client.events import DevicesChanged, Drained
from porch.client.store import LocalStore, OutboxItem
from porch.client.verified import Verification
from porch.crypto.content import (
    GroupKey,
    GroupStateKey,
    GroupUpdate,
    Receipt,
    Typing,
    encode_content,
)
from porch.crypto.errors import CryptoError
from porch.crypto.megolm import RotationPolicy
from porch.crypto.olm import OlmMachine, OneTimeKey
from porch.protocol.codec import b64encode
from porch.protocol.fields import ACCOUNT_ID_PATTERN

log = logging.getLogger("porch.client")

if TYPE_CHECKING:  # porch.client.api imports the core: no import at run time
    from porch.client.group_api import Group

_GROUP_ID = re.compile(ACCOUNT_ID_PATTERN)  # group ids are UUID4 strings like account ids (spec B)
ONE_TIME_KEYS_TARGET = 50
ONE_TIME_KEYS_LOW = 20
ACK_BATCH = 128
SEEN_RETENTION_MS = 45 * 86_400_000


class ClientCore:
    def __init__(
        self,
        store: LocalStore,
        olm: OlmMachine,
        account_id: str,
        device_id: int,
        *,
        handlers: Handlers | None = None,
        max_parked: int = MAX_PARKED,
        clock: Callable[[], int] = now_ms,
        rotation: RotationPolicy | None = None,
    ) -> None:
        self.state = CoreState(store, olm, account_id, device_id, clock)
        # One GroupCrypto for the core and client.groups (the Client hands it over).
        self.groups = GroupCrypto(self.state, store.subkey(MEGOLM_PICKLE_LABEL), rotation)
        self._sync = GroupSync(self.state, self.groups)
        self.handlers = handlers or default_handlers()
        self.handlers.register(GroupKey, GroupKeyHandler(self.groups))
        self.handlers.register(GroupStateKey, GroupStateKeyHandler(self.groups, self._sync))
        self.handlers.register(GroupUpdate, GroupUpdateHandler(self._sync))
        group_receiver = GroupReceiver(self.state, self.groups, self._sync)
        self._receiver = Receiver(self.state, self.handlers, group_receiver, max_parked)
        self._outbox = Outbox(self.state, self.groups)

    # What the async layer swaps after a reopen or a takeover ---------------------------------

    @property
    def store(self) -> LocalStore:
        return self.state.store

    @store.setter
    def store(self, store: LocalStore) -> None:
        self.state.store = store

    @property
    def olm(self) -> OlmMachine:
        return self.state.olm

    @olm.setter
    def olm(self, olm: OlmMachine) -> None:
        self.state.olm = olm

    def _take(self) -> list[Action]:
        """The actions collected; one's own device list changing (a device linked while this
        one runs) makes the outbox list its own devices again, so the new one gets copies."""
        actions = self.state.take()
        me = self.state.account_id
        if any(
            isinstance(a, EmitEvent)
            and isinstance(a.event, DevicesChanged)
            and a.event.account_id == me
            for a in actions
        ):
            self._outbox.own_devices_changed()
        return actions

    # The connection --------------------------------------------------------------------------

    def auth_frame(self, password: str) -> dict[str, Any]:
        return frames.auth(self.state.account_id, self.state.device_id, password)

    def connected(self, ready: dict[str, Any]) -> list[Action]:
        """The server accepted ``auth`` with this ``ready`` frame."""
        self._outbox.reset()
        self._receiver.reset()
        self._sync.reset()
        # The server keeps envelopes for its retention (30 days by default); ids older than
        # that can never come again.
        self.state.store.prune_seen(self.state.clock() - SEEN_RETENTION_MS)
        keys = ready.get("one_time_keys", 0)
        if not isinstance(keys, int) or keys < ONE_TIME_KEYS_LOW:
            self.state.out.append(TopUpKeys())
        return self._take()

    def disconnected(self) -> None:
        """Envelopes waiting for keys were not acknowledged: they come again."""
        self._receiver.reset()

    def receive(self, frame: dict[str, Any]) -> list[Action]:
        """One decoded server frame."""
        state, kind = self.state, frame.get("type")
        if kind == "envelope":
            self._receiver.take(frame)
            if len(state.pending_acks) >= ACK_BATCH:
                return self._take() + self.flush()
        elif kind == "envelopes":
            items = frame.get("items")
            for item in items if isinstance(items, list) else [items]:
                self._receiver.take(item)
            return self._take() + self.flush()
        elif kind == "sent":
            state.out.extend(self._outbox.on_sent(frame))
        elif kind == "error":
            state.out.extend(self._outbox.on_error(frame))
        elif kind == "keys_low":
            state.out.append(TopUpKeys())
        elif kind == "group_changed":
            group = frame.get("group")  # a hint to refetch (spec B)
            if isinstance(group, str) and _GROUP_ID.fullmatch(group):
                self._sync.fetch(group)
        elif kind == "drained":
            state.out.append(EmitEvent(Drained()))
        return self._take()

    @property
    def wants_flush(self) -> bool:
        """Acks, rejects or receipts wait; or envelopes wait for keys (their acks will)."""
        s = self.state
        return bool(s.pending_acks or s.pending_receipts or s.pending_rejects) or self.parked > 0

    @property
    def parked(self) -> int:
        return self._receiver.parked

    def flush(self) -> list[Action]:
        """Send what waits: receipts into the outbox, then acks, then rejects."""
        state = self.state
        if state.pending_receipts:
            receipts, state.pending_receipts = state.pending_receipts, {}
            for sender, message_ids in receipts.items():
                state.queue_content(
                    sender, encode_content(Receipt("delivered", tuple(message_ids)))
                )
        if state.pending_acks:
            acks, state.pending_acks = state.pending_acks, []
            state.out.append(SendFrame(frames.ack(acks)))
        if state.pending_rejects:
            rejects, state.pending_rejects = state.pending_rejects, {}
            for reason, ids in rejects.items():
                state.out.extend(SendFrame(f) for f in frames.rejects(reason, ids))
        return self._take()

    # Keys ------------------------------------------------------------------------------------

    def keys_fetched(self, account: str, token: int, bundle: Bundle) -> list[Action]:
        self._receiver.keys_fetched(account, token, bundle)
        return self._take()

    def keys_fetch_failed(self, account: str, token: int, error: ClientError) -> list[Action]:
        self._receiver.keys_fetch_failed(account, token, error)
        return self._take()

    def one_time_keys(self, count: int) -> list[OneTimeKey]:
        """New one-time keys when the server holds ``count``: none if that is enough."""
        if count >= ONE_TIME_KEYS_LOW:
            return []
        keys = self.state.olm.generate_one_time_keys(ONE_TIME_KEYS_TARGET - max(count, 0))
        self.state.save_olm()  # before the upload: a key the server hands out must be ours
        return keys

    def verify_bundle(self, bundle: Bundle, check_one_time_keys: bool) -> list[Action]:
        verify_bundle(self.state, bundle, check_one_time_keys)
        return self._take()

    # Sending ---------------------------------------------------------------------------------

    def next_outbox_items(self) -> list[OutboxItem]:
        return self._outbox.next_items()

    def prepare(self, item: OutboxItem) -> list[Action]:
        """SendFrame for the item, or ClaimKeys first (then ``keys_claimed``)."""
        return self._outbox.prepare(item) + self._take()

    def keys_claimed(self, claim: ClaimKeys, bundle: Bundle) -> list[Action]:
        return self._outbox.keys_claimed(claim, bundle) + self._take()

    def keys_claim_failed(self, claim: ClaimKeys, error: ClientError) -> list[Action]:
        return self._outbox.keys_claim_failed(claim, error) + self._take()

    def not_sent(self, client_id: str) -> None:
        self._outbox.not_sent(client_id)

    def queue_content(self, recipient: str, content: bytes) -> list[Action]:
        self.state.queue_content(recipient, content)
        return self._take()

    def typing_frame(self, peer: str, started: bool, frame_id: str) -> dict[str, Any] | None:
        """An online-only typing frame, or None when a device lacks a session (never
        claimed for: typing is not worth a one-time key)."""
        state = self.state
        if state.store.verification(peer) is Verification.KEY_CHANGED:
            return None  # like its messages, it waits until the new key is accepted
        devices = [d for d in state.store.peer_devices(peer) if not state.is_me(peer, d.device_id)]
        if not devices or not all(state.olm.has_session((peer, d.device_id)) for d in devices):
            return None
        content = encode_content(Typing("started" if started else "stopped"))
        messages = self._outbox.encrypt_to(peer, devices, content)
        return frames.send(frame_id, [frames.destination(peer, messages)], ephemeral=True)

    def group_typing_frame(
        self, group_id: str, started: bool, frame_id: str
    ) -> dict[str, Any] | None:
        """An online-only typing frame for a group: Megolm to every member device that holds
        the current session; None when some device still lacks it (typing shares no keys)."""
        sends = self._outbox.groups
        accounts = [m.account_id for m in self.state.store.group_members(group_id)]
        if self.state.account_id not in accounts:
            return None
        by_account = {a: rows for a in accounts if (rows := sends.ready(a))}
        devices = [d for rows in by_account.values() for d in rows]
        if not devices:
            return None
        try:
            plan = self.groups.prepare(group_id, devices, self.state.clock())
            if plan.shares:
                return None
            body = self.groups.encrypt(
                group_id, encode_content(Typing("started" if started else "stopped"))
            )
        except CryptoError:
            return None
        destinations = [
            frames.destination(a, [frames.ciphertext(d.device_id, d.registration_id) for d in rows])
            for a, rows in by_account.items()
        ]
        return frames.send(frame_id, destinations, shared=(2, b64encode(body)), ephemeral=True)

    # Groups ----------------------------------------------------------------------------------

    def group_fetched(self, group: Group) -> list[Action]:
        """The answer to FetchGroup."""
        self._sync.fetched(group)
        return self._take()

    def group_fetch_failed(self, group_id: str, error: ClientError) -> list[Action]:
        self._sync.failed(group_id, error)
        return self._take()

    def label(self, account_id: str) -> str:
        return self.state.label(account_id)

    @property
    def sending(self) -> bool:
        """Receipts wait to be queued, or the outbox is not empty."""
        return bool(self.state.pending_receipts) or self.state.store.outbox_size() > 0
