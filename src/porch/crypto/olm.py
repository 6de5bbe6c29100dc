"""A typed wrapper over vodozemac's Olm: one device's account and its sessions with peers.

All ratchet cryptography is vodozemac's (Olm as specified by Matrix, "Olm: A Cryptographic
Ratchet"); this module only decides which session to use, keeps the per-peer session list and
tracks what the caller must persist. It does no I/O: callers store the pickles it returns.

Session selection follows what libolm-based Matrix clients do: several sessions may exist with
one peer device (both sides may start a session at the same moment, or a peer may reinstall
state), an incoming message is tried against each, and whichever session last decrypted a
message becomes the one used for sending, so both sides converge on the same session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import vodozemac

from porch.crypto.errors import BAD_KEY, CryptoError, DecryptError
from porch.crypto.signing import one_time_key_payload

PeerDevice = tuple[str, int]  # (account_id, device_id)

PICKLE_KEY_LEN = 32
# libolm clients keep a handful of sessions per device and drop the least recently used.
MAX_SESSIONS_PER_PEER = 5
PRE_KEY = 0
NORMAL = 1


@dataclass(frozen=True)
class OneTimeKey:
    key_id: str
    curve25519: str
    signature: str
    fallback: bool


@dataclass(frozen=True)
class OlmCiphertext:
    kind: int  # 0 = pre-key message, 1 = normal message
    body: bytes


def _check_pickle_key(pickle_key: bytes) -> None:
    if len(pickle_key) != PICKLE_KEY_LEN:
        raise CryptoError(f"pickle key must be {PICKLE_KEY_LEN} bytes", code=BAD_KEY)


class OlmMachine:
    """One device's Olm account plus its sessions with peer devices. Holds no I/O; callers
    persist pickles.

    Sessions for each peer are kept most recently used first; the first one is "preferred" and
    used by :meth:`encrypt`. :meth:`dirty_peers` and :attr:`account_dirty` say what changed
    since :meth:`clear_dirty`, so the caller re-pickles only that.
    """

    def __init__(self, account: vodozemac.Account, pickle_key: bytes) -> None:
        _check_pickle_key(pickle_key)
        self._account = account
        self._pickle_key = bytes(pickle_key)
        self._sessions: dict[PeerDevice, list[vodozemac.Session]] = {}
        self._dirty: set[PeerDevice] = set()
        self._account_dirty = False

    @classmethod
    def create(cls, pickle_key: bytes) -> OlmMachine:
        machine = cls(vodozemac.Account(), pickle_key)
        machine._account_dirty = True  # a fresh account has never been persisted
        return machine

    @classmethod
    def from_pickle(cls, pickled_account: str, pickle_key: bytes) -> OlmMachine:
        _check_pickle_key(pickle_key)
        try:
            account = vodozemac.Account.from_pickle(pickled_account, pickle_key)
        except ValueError as exc:
            raise CryptoError(f"cannot unpickle Olm account: {exc}", code=BAD_KEY) from None
        return cls(account, pickle_key)

    # Identity -----------------------------------------------------------------------------

    @property
    def curve25519(self) -> str:
        return self._account.curve25519_key.to_base64()

    @property
    def ed25519(self) -> str:
        return self._account.ed25519_key.to_base64()

    def sign(self, payload: bytes) -> str:
        """Sign with the device's Ed25519 identity key; unpadded base64 signature."""
        return self._account.sign(payload).to_base64()

    # Keys ---------------------------------------------------------------------------------

    def _signed(
        self, key_id: str, key: vodozemac.Curve25519PublicKey, fallback: bool
    ) -> OneTimeKey:
        curve = key.to_base64()
        signature = self.sign(one_time_key_payload(key_id, curve, fallback))
        return OneTimeKey(key_id=key_id, curve25519=curve, signature=signature, fallback=fallback)

    def generate_one_time_keys(self, count: int) -> list[OneTimeKey]:
        """Generate, sign and mark published ``count`` one-time keys.

        They are marked published at once because the caller uploads the returned list; if the
        upload fails the keys are merely wasted, which is harmless (vodozemac keeps at most
        ``max_number_of_one_time_keys`` and discards the oldest).
        """
        if count < 0:
            raise ValueError("count must be non-negative")
        self._account.generate_one_time_keys(count)
        unpublished = self._account.one_time_keys
        keys = [self._signed(kid, key, False) for kid, key in sorted(unpublished.items())]
        self._account.mark_keys_as_published()
        self._account_dirty = True
        return keys

    def generate_fallback_key(self) -> OneTimeKey:
        """Generate, sign and mark published a new fallback key (used when OTKs run out)."""
        # vodozemac 0.10's type stubs omit the fallback-key API although the binding has it.
        self._account.generate_fallback_key()  # type: ignore[attr-defined]
        unpublished: dict[str, Any] = self._account.fallback_key  # type: ignore[attr-defined]
        (kid, key), *_ = unpublished.items()
        signed = self._signed(str(kid), key, True)
        self._account.mark_keys_as_published()
        self._account_dirty = True
        return signed

    @property
    def max_one_time_keys(self) -> int:
        """How many one-time keys the account holds at most (vodozemac's limit)."""
        return self._account.max_number_of_one_time_keys

    # Sessions -----------------------------------------------------------------------------

    def has_session(self, peer: PeerDevice) -> bool:
        return bool(self._sessions.get(peer))

    def _promote(self, peer: PeerDevice, session: vodozemac.Session) -> None:
        """Put ``session`` first for ``peer`` and drop the least recently used beyond the cap."""
        sessions = [s for s in self._sessions.get(peer, []) if s is not session]
        sessions.insert(0, session)
        self._sessions[peer] = sessions[:MAX_SESSIONS_PER_PEER]
        self._dirty.add(peer)

    def create_outbound_session(
        self, peer: PeerDevice, identity_curve25519: str, one_time_key: str
    ) -> None:
        """Start a session from a peer's identity key and a claimed one-time (or fallback) key.

        The caller must already have verified the device binding and the key's signature. The
        new session becomes preferred; its messages are pre-key messages until the peer replies.
        """
        try:
            identity = vodozemac.Curve25519PublicKey.from_base64(identity_curve25519)
            otk = vodozemac.Curve25519PublicKey.from_base64(one_time_key)
            session = self._account.create_outbound_session(identity, otk)
        except ValueError as exc:
            raise CryptoError(f"cannot create Olm session: {exc}", code=BAD_KEY) from None
        self._promote(peer, session)

    def encrypt(self, peer: PeerDevice, plaintext: bytes) -> OlmCiphertext:
        """Encrypt with the preferred session; CryptoError code "bad_key" if there is none."""
        sessions = self._sessions.get(peer)
        if not sessions:
            raise CryptoError(f"no Olm session with {peer[0]}/{peer[1]}", code=BAD_KEY)
        kind, body = sessions[0].encrypt(plaintext).to_parts()
        self._dirty.add(peer)
        return OlmCiphertext(kind=int(kind), body=bytes(body))

    def decrypt(
        self, peer: PeerDevice, identity_curve25519: str, ciphertext: OlmCiphertext
    ) -> bytes:
        """Decrypt a message from ``peer``, whose identity key the caller has verified.

        Normal messages are tried against every session with the peer, preferred first. A
        pre-key message goes to the existing session it belongs to if any (a retransmission or a
        later message sent before the peer saw our reply); otherwise it creates a new inbound
        session, consuming our one-time key. Whichever session decrypts becomes preferred.
        Raises DecryptError; a failure changes no state (vodozemac only commits a ratchet step
        or removes a one-time key after the message authenticated).
        """
        if ciphertext.kind not in (PRE_KEY, NORMAL):
            raise DecryptError(f"unknown Olm message type {ciphertext.kind}")
        try:
            message = vodozemac.AnyOlmMessage.from_parts(ciphertext.kind, ciphertext.body)
        except ValueError as exc:
            raise DecryptError(f"malformed Olm message: {exc}") from None
        sessions = list(self._sessions.get(peer, []))

        if ciphertext.kind == NORMAL:
            for session in sessions:
                try:
                    plaintext = session.decrypt(message)
                except ValueError:
                    continue
                self._promote(peer, session)
                return bytes(plaintext)
            raise DecryptError(f"no Olm session with {peer[0]}/{peer[1]} decrypts the message")

        try:
            pre_key = message.to_pre_key()
        except ValueError as exc:
            raise DecryptError(f"malformed pre-key message: {exc}") from None
        if pre_key is None:
            raise DecryptError("message is not a pre-key message")
        for session in sessions:
            if session.session_matches(pre_key):
                # The message belongs to this session, so failing here (a replay, tampering) must
                # not fall through to creating a second session from the same one-time key.
                try:
                    plaintext = session.decrypt(message)
                except ValueError as exc:
                    raise DecryptError(f"cannot decrypt pre-key message: {exc}") from None
                self._promote(peer, session)
                return bytes(plaintext)
        try:
            identity = vodozemac.Curve25519PublicKey.from_base64(identity_curve25519)
            session, plaintext = self._account.create_inbound_session(identity, pre_key)
        except ValueError as exc:
            raise DecryptError(f"cannot create inbound Olm session: {exc}") from None
        self._account_dirty = True  # the one-time key is now used up
        self._promote(peer, session)
        return bytes(plaintext)

    def forget_peer(self, peer: PeerDevice) -> None:
        """Drop every session with ``peer`` (e.g. the device was removed); marks it dirty."""
        self._sessions.pop(peer, None)
        self._dirty.add(peer)

    def peers(self) -> set[PeerDevice]:
        """Peers with at least one session held in memory."""
        return {peer for peer, sessions in self._sessions.items() if sessions}

    # Persistence --------------------------------------------------------------------------

    def pickle_account(self) -> str:
        return self._account.pickle(self._pickle_key)

    def pickle_sessions(self, peer: PeerDevice) -> str:
        """A JSON list of vodozemac session pickles, preferred first; "[]" if there are none."""
        return json.dumps([s.pickle(self._pickle_key) for s in self._sessions.get(peer, [])])

    def load_sessions(self, peer: PeerDevice, pickled: str) -> None:
        """Replace the sessions with ``peer`` by those in a :meth:`pickle_sessions` string."""
        try:
            items = json.loads(pickled)
        except json.JSONDecodeError:
            raise CryptoError("session pickle is not JSON", code=BAD_KEY) from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise CryptoError("session pickle must be a JSON list of strings", code=BAD_KEY)
        try:
            sessions = [vodozemac.Session.from_pickle(i, self._pickle_key) for i in items]
        except ValueError as exc:
            raise CryptoError(f"cannot unpickle Olm session: {exc}", code=BAD_KEY) from None
        if sessions:
            self._sessions[peer] = sessions[:MAX_SESSIONS_PER_PEER]
        else:
            self._sessions.pop(peer, None)

    def dirty_peers(self) -> set[PeerDevice]:
        return set(self._dirty)

    @property
    def account_dirty(self) -> bool:
        return self._account_dirty

    def clear_dirty(self) -> None:
        """Forget what changed (both peers and the account), after the caller persisted it."""
        self._dirty.clear()
        self._account_dirty = False
