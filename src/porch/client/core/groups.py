"""Group messages for the client core: Megolm sessions, their key shares, kind-2 bodies.

Sans-IO (docs/design.md, "Client core"), issue 7 spec E. To send a content to a group the core
calls, in one pass:

1. ``prepare(group, devices, now)`` with the current device rows of every member account
   (this account's other devices included): it rotates the outbound session when it must
   (a member left or was removed, a device that holds the key is no longer listed, the
   policy's message count or age, a clock that went back), and returns the ``group_key``
   contents still owed to devices that do not have the current session. The new session is
   persisted before the shares exist, so a crash cannot lose a key already handed out;
2. the caller sends each share over Olm to its device, and once they are durably queued calls
   ``mark_shared`` (in the outbox's own transaction if it passes ``db``);
3. ``encrypt(group, content)``: the kind-2 body (porch.crypto.group_message) for the shared
   payload of the send. The ratchet is persisted before the body is returned, as the outbox
   persists the Olm ratchet before a ciphertext leaves (a restored older session would reuse
   an index, which receivers refuse as a replay).

On receipt: ``receive_key`` for a ``group_key`` that came over Olm (signature by the sending
device's Ed25519 key, bound to the group and session: porch.crypto.megolm.group_key_payload),
and ``decrypt`` for a kind-2 body from (sender account, sender device). The replay record of an
inbound session changes with each message: ``persist(db)`` writes it, inside the transaction
that stores the message, like CoreState.persist_olm.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from porch.client.contacts import PeerDeviceRow
from porch.client.core.context import CoreState
from porch.client.group_store import CLOSED_PREFIX
from porch.crypto.content import (
    Content,
    Delete,
    Edit,
    GroupKey,
    GroupStateKey,
    GroupUpdate,
    Reaction,
    Text,
    decode_content,
    encode_content,
)
from porch.crypto.errors import (
    BAD_KEY,
    UNKNOWN_SESSION,
    CryptoError,
    DecryptError,
    SignatureError,
)
from porch.crypto.group_message import GroupMessage, decode_group_message, encode_group_message
from porch.crypto.group_state import MAX_EPOCH, STATE_KEY_LEN
from porch.crypto.megolm import (
    InboundGroupSession,
    OutboundGroupSession,
    RotationPolicy,
    RotationReason,
    group_key_payload,
    rotation_reason,
)
from porch.protocol.codec import b64decode, b64encode

log = logging.getLogger("porch.client")

# The label of Sealer.subkey for the Megolm pickle key (docs/protocol.md, "Pickles").
MEGOLM_PICKLE_LABEL: Final = "megolm-pickle"

InboundKey = tuple[str, str, int, str]  # (group, sender account, sender device, session id)


@dataclass(frozen=True, slots=True)
class KeyShare:
    """A ``group_key`` content (encoded, padded) to send over Olm to one device."""

    account_id: str
    device_id: int
    content: bytes


@dataclass(frozen=True, slots=True)
class GroupSendPlan:
    group_id: str
    session_id: str
    # Why a new session was started ("new" for a group's first), or None if it was kept.
    rotated: RotationReason | Literal["new"] | None
    shares: tuple[KeyShare, ...]


@dataclass(frozen=True, slots=True)
class GroupDecrypted:
    group_id: str
    session_id: str
    content: Content
    plaintext: bytes  # the padded content bytes, as an Olm message gives them
    message_index: int
    duplicate: bool  # the same ciphertext was decrypted before (a redelivery)
    # The session is of a member from before it went (GroupStore.close_inbound): what it
    # says is not the group's, bar the sender's own leave update.
    closed: bool = False


class GroupCrypto:
    def __init__(
        self, state: CoreState, pickle_key: bytes, policy: RotationPolicy | None = None
    ) -> None:
        self._state = state
        self._pickle_key = bytes(pickle_key)
        self._policy = policy or RotationPolicy()
        # Inbound sessions whose replay record moved and is not yet written (persist()).
        self._dirty: dict[InboundKey, InboundGroupSession] = {}

    # Sending -------------------------------------------------------------------------------

    def prepare(
        self, group_id: str, devices: Sequence[PeerDeviceRow], now_ms: int
    ) -> GroupSendPlan:
        """Make sure the outbound session may be used now and say who still needs its key.

        ``devices``: the current devices of every member account, this account's included;
        this device itself is skipped.
        """
        state, store = self._state, self._state.store
        targets = {
            (d.account_id, d.device_id): d
            for d in devices
            if not state.is_me(d.account_id, d.device_id)
        }
        pickle, rotate = store.outbound_session(group_id)
        session = (
            None if pickle is None else OutboundGroupSession.from_pickle(pickle, self._pickle_key)
        )
        reason: RotationReason | Literal["new"] | None = None
        if session is None:
            reason = "new"
        else:
            shared = store.shared_with(group_id, session.session_id)
            # A device that holds the key but is no longer a member's device: as a removal.
            removed = rotate or not shared <= targets.keys()
            reason = rotation_reason(
                self._policy,
                messages_sent=session.message_index,
                created_at_ms=session.created_at_ms,
                now_ms=now_ms,
                member_removed=removed,
            )
        if reason is not None:
            session = OutboundGroupSession.create(self._pickle_key, now_ms)
            with store.transaction() as db:
                store.save_outbound_session(group_id, session.pickle(), new=True, db=db)
            log.info("group %s: new outbound session (%s)", group_id[:8], reason)
            shared = set()
        assert session is not None
        owed = sorted(set(targets) - shared)
        key = GroupKey(
            group=group_id,
            session=session.session_id,
            key=session.session_key(),
            sig=state.olm.sign(group_key_payload(group_id, session.session_id)),
        )
        content = encode_content(key)
        shares = tuple(KeyShare(a, d, content) for a, d in owed)
        return GroupSendPlan(group_id, session.session_id, reason, shares)

    def mark_shared(
        self,
        group_id: str,
        session_id: str,
        devices: Iterable[tuple[str, int]],
        db: sqlite3.Connection | None = None,
    ) -> None:
        """Record that these devices were given the session (their shares are queued)."""
        self._state.store.add_shared(group_id, session_id, devices, db)

    def encrypt(self, group_id: str, content: bytes) -> bytes:
        """Encrypt an encoded content with the outbound session ``prepare`` readied; returns
        the kind-2 envelope body. The ratchet is saved before the body is returned."""
        store = self._state.store
        pickle, rotate = store.outbound_session(group_id)
        if pickle is None or rotate:
            raise CryptoError("the group's outbound session must be prepared first", code=BAD_KEY)
        session = OutboundGroupSession.from_pickle(pickle, self._pickle_key)
        if session.message_index >= self._policy.max_messages:
            raise CryptoError("the group's outbound session must rotate first", code=BAD_KEY)
        ciphertext = session.encrypt(content)
        with store.transaction() as db:
            store.save_outbound_session(group_id, session.pickle(), new=False, db=db)
        return encode_group_message(GroupMessage(group_id, session.session_id, ciphertext))

    def member_removed(self, group_id: str) -> None:
        """A member left or was removed: the next ``prepare`` starts a new session."""
        self._state.store.mark_rotate(group_id)

    # Receiving -----------------------------------------------------------------------------

    def _sender_ed25519(self, account_id: str, device_id: int) -> str:
        for row in self._state.store.peer_devices(account_id):
            if row.device_id == device_id:
                return row.ed25519
        raise SignatureError(f"group key from unknown device {device_id} of {account_id[:8]}")

    def receive_key(self, sender_account: str, sender_device: int, key: GroupKey) -> bool:
        """Store the inbound session a ``group_key`` (decrypted from Olm, so from this very
        device) carries; False when it was known already (the first copy is kept, with its
        replay record and earliest index). SignatureError or CryptoError ``bad_key`` when it
        does not verify."""
        ed25519 = self._sender_ed25519(sender_account, sender_device)
        ident: InboundKey = (key.group, sender_account, sender_device, key.session)
        if ident in self._dirty or self._state.store.inbound_session(*ident) is not None:
            return False
        closed = (key.group, CLOSED_PREFIX + sender_account, sender_device, key.session)
        if self._state.store.inbound_session(*closed) is not None:
            return False  # closed when its sender went (close): shared again, it stays closed
        session = InboundGroupSession.from_group_key(
            group_id=key.group,
            session_id=key.session,
            session_key=key.key,
            signature=key.sig,
            sender_ed25519=ed25519,
            pickle_key=self._pickle_key,
        )
        self._state.store.save_inbound_sessions({ident: session.pickle()})
        return True

    def decrypt(self, sender_account: str, sender_device: int, body: bytes) -> GroupDecrypted:
        """Decrypt a kind-2 body that came from (sender account, sender device).

        DecryptError codes: ``unknown_session`` (no key from that device for that group yet),
        ``unknown_index`` (sent before this device got the key: a late joiner), ``replayed``,
        ``decrypt_failed`` (a session of another device or group, tampering, a content that
        names another group). The caller must ``persist`` in the transaction that stores the
        message.
        """
        message = decode_group_message(body)
        ident: InboundKey = (message.group_id, sender_account, sender_device, message.session_id)
        session = self._dirty.get(ident)
        closed = False
        if session is None:
            pickle = self._state.store.inbound_session(*ident)
            if pickle is None:
                gone: InboundKey = (ident[0], CLOSED_PREFIX + sender_account, *ident[2:])
                pickle = self._state.store.inbound_session(*gone)
                ident, closed = (gone, True) if pickle is not None else (ident, False)
            if pickle is None:
                if self._state.store.inbound_session_known(message.session_id):
                    raise DecryptError("the group session belongs to another device or group")
                raise DecryptError(
                    "no key for this group session from that device yet", code=UNKNOWN_SESSION
                )
            session = InboundGroupSession.from_pickle(pickle, self._pickle_key)
        plain = session.decrypt(message.ciphertext)
        self._dirty[ident] = session
        content = decode_content(plain.plaintext)
        _check_content_group(content, message.group_id)
        return GroupDecrypted(
            message.group_id,
            message.session_id,
            content,
            plain.plaintext,
            plain.message_index,
            plain.duplicate,
            closed,
        )

    def close(self, group_id: str, accounts: set[str]) -> None:
        """These accounts went from the group: their sessions so far are closed
        (GroupStore.close_inbound); sessions held unsaved are saved first."""
        self.save()
        self._state.store.close_inbound(group_id, accounts)

    def persist(self, db: sqlite3.Connection) -> None:
        if self._dirty:
            pickles = {k: s.pickle() for k, s in self._dirty.items()}
            self._state.store.save_inbound_sessions(pickles, db)
            self._dirty.clear()

    def save(self) -> None:
        with self._state.store.transaction() as db:
            self.persist(db)

    # Group state keys ----------------------------------------------------------------------

    def new_state_key(self, group_id: str) -> GroupStateKey:
        """A fresh state key at the next epoch (after a removal), stored; send it to every
        remaining member device over Olm (``encode_content``)."""
        store = self._state.store
        latest = store.latest_state_key(group_id)
        epoch = 0 if latest is None else latest[0] + 1
        if epoch > MAX_EPOCH:
            raise CryptoError("the group has used every state key epoch", code=BAD_KEY)
        key = os.urandom(STATE_KEY_LEN)
        store.put_state_key(group_id, epoch, key)
        return GroupStateKey(group=group_id, epoch=epoch, key=b64encode(key))

    def receive_state_key(self, key: GroupStateKey) -> bool:
        """Keep a state key that came over Olm; the first key of an epoch wins."""
        return self._state.store.put_state_key(key.group, key.epoch, b64decode(key.key))


def _check_content_group(content: Content, group_id: str) -> None:
    """A text, reaction, edit, delete or update inside a group session must name that group
    (spec E, issue 8)."""
    if isinstance(content, Text | Reaction | Edit | Delete) and content.group != group_id:
        raise DecryptError(f"a group {type(content).__name__.lower()} names another group")
    if isinstance(content, GroupUpdate) and content.group != group_id:
        raise DecryptError("a group update names another group than its session")
