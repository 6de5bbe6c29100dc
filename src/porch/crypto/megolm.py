"""Typed wrappers over vodozemac's Megolm group sessions, and when to rotate them.

The ratchet is vodozemac's (Megolm as specified in matrix-org/olm docs/megolm.md: a 128-byte
hash ratchet, AES-256-CBC + HMAC-SHA-256 per message, every message signed by the session's
Ed25519 key). This module adds what the Matrix client-server specification asks of clients on
top of the library (section "m.megolm.v1.aes-sha2"):

* replay protection: "clients must guard against replay attacks by keeping track of the ratchet
  indices of Megolm sessions"; an index that decrypted one ciphertext refuses any other
  ciphertext (the same ciphertext again is a retransmission, reported as a duplicate, since
  Porch delivers at least once);
* the binding of a session to the device that created it (:func:`group_key_payload`), which the
  sender signs with its device key when it shares the session (content kind ``group_key``);
* the rotation rule of issue 7 (:class:`RotationPolicy`).

No I/O: callers persist the pickles, sealed with AES-256-GCM under a key derived from the
32-byte pickle key so the replay record and the creation time cannot be edited on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Final, Literal

import vodozemac
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from porch.crypto.errors import BAD_KEY, REPLAYED, UNKNOWN_INDEX, CryptoError, DecryptError
from porch.crypto.signing import verify_ed25519
from porch.protocol.codec import b64decode, b64encode

PICKLE_KEY_LEN: Final = 32
PICKLE_VERSION: Final = 0x01
_PICKLE_INFO: Final = b"porch/megolm-pickle/v1"
_NONCE_LEN: Final = 12
# A content is at most 64 KiB of text plus JSON and padding; Megolm adds a header, the CBC
# block padding, an 8-byte MAC and a 64-byte signature. Anything larger is refused unread.
MAX_MESSAGE_BYTES: Final = 80 * 1024
# Bound on the replay record of one inbound session. A sender rotates after at most
# RotationPolicy.max_messages messages (<= this), so an honest session never reaches it.
MAX_TRACKED_INDICES: Final = 1_000
MAX_MESSAGE_INDEX: Final = 2**32 - 1  # Megolm's counter is a u32
GROUP_KEY_LABEL: Final = b"porch/group-key/v1\x00"
MAX_GROUP_ID_BYTES: Final = 128
_DIGEST_LEN: Final = 16  # truncated SHA-256: collisions would need 2^64 work by the sender

DAY_MS: Final = 24 * 3600 * 1000
MAX_TIME_MS: Final = 2**53 - 1  # timestamps survive a JavaScript number (as in contents)


def _check_pickle_key(pickle_key: bytes) -> None:
    if len(pickle_key) != PICKLE_KEY_LEN:
        raise CryptoError(f"pickle key must be {PICKLE_KEY_LEN} bytes", code=BAD_KEY)


def _wrap_key(pickle_key: bytes) -> bytes:
    _check_pickle_key(pickle_key)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PICKLE_INFO)
    return hkdf.derive(pickle_key)


def _seal(kind: bytes, obj: dict[str, Any], pickle_key: bytes) -> str:
    nonce = os.urandom(_NONCE_LEN)
    body = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")
    header = bytes([PICKLE_VERSION])
    sealed = AESGCM(_wrap_key(pickle_key)).encrypt(nonce, body, header + kind)
    return b64encode(header + nonce + sealed)


def _unseal(kind: bytes, pickled: str, pickle_key: bytes) -> dict[str, Any]:
    key = _wrap_key(pickle_key)
    try:
        raw = b64decode(pickled)
    except ValueError:
        raise CryptoError("Megolm pickle is not base64", code=BAD_KEY) from None
    if len(raw) < 1 + _NONCE_LEN + 16 or raw[0] != PICKLE_VERSION:
        raise CryptoError("Megolm pickle has an unknown format", code=BAD_KEY)
    try:
        body = AESGCM(key).decrypt(raw[1 : 1 + _NONCE_LEN], raw[1 + _NONCE_LEN :], raw[:1] + kind)
    except InvalidTag:
        raise CryptoError("Megolm pickle does not open with this key", code=BAD_KEY) from None
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise CryptoError("Megolm pickle is malformed", code=BAD_KEY)
    return obj


def _check_group_id(group_id: str) -> bytes:
    raw = group_id.encode("utf-8")
    if not raw or len(raw) > MAX_GROUP_ID_BYTES or b"\x00" in raw:
        raise CryptoError(f"group id must be 1..{MAX_GROUP_ID_BYTES} bytes without NUL")
    return raw


def group_key_payload(group_id: str, session_id: str) -> bytes:
    """Bytes the sending device's Ed25519 key signs when it shares a session (``group_key``).

    The Megolm session id is the session's Ed25519 public key, which signs every message, so
    this signature binds that key to one device and one group. Olm already authenticates who
    sent the key, but without this a member could re-share someone else's session as its own
    and, with a server that restamps envelopes, have their messages attributed to it (Matrix
    binds the same through the Olm payload's ``keys.ed25519`` and ``sender_key``).
    """
    try:
        session_key = b64decode(session_id)
    except ValueError:
        raise CryptoError("session id is not base64", code=BAD_KEY) from None
    if len(session_key) != 32:
        raise CryptoError("session id must be a 32-byte Ed25519 key", code=BAD_KEY)
    return GROUP_KEY_LABEL + _check_group_id(group_id) + b"\x00" + session_key


# Rotation ---------------------------------------------------------------------------------

RotationReason = Literal["member_removed", "max_messages", "max_age", "clock"]


@dataclass(frozen=True)
class RotationPolicy:
    """When an outbound session must be replaced (issue 7; Matrix's rotation_period_msgs and
    rotation_period_ms in m.room.encryption default to 100 messages and a week as well)."""

    max_messages: int = 100
    max_age_ms: int = 7 * DAY_MS

    def __post_init__(self) -> None:
        if not 1 <= self.max_messages <= MAX_TRACKED_INDICES:
            raise ValueError(f"max_messages must be in 1..{MAX_TRACKED_INDICES}")
        if not 60_000 <= self.max_age_ms <= 365 * DAY_MS:
            raise ValueError("max_age_ms must be between one minute and a year")


def rotation_reason(
    policy: RotationPolicy,
    *,
    messages_sent: int,
    created_at_ms: int,
    now_ms: int,
    member_removed: bool,
) -> RotationReason | None:
    """Why the outbound session must rotate before the next message, or None to keep it.

    ``member_removed`` is whether a member left or was removed since the session was created:
    the departed devices hold its key, so the next message needs a fresh session. A member
    joining does not rotate: the newcomer gets the key at the current index only, which cannot
    decrypt earlier messages. A clock that went back before the creation time rotates too,
    since the session's age can no longer be trusted.
    """
    if member_removed:
        return "member_removed"
    if messages_sent >= policy.max_messages:
        return "max_messages"
    if now_ms < created_at_ms:
        return "clock"
    if now_ms - created_at_ms >= policy.max_age_ms:
        return "max_age"
    return None


def must_rotate(
    policy: RotationPolicy,
    *,
    messages_sent: int,
    created_at_ms: int,
    now_ms: int,
    member_removed: bool,
) -> bool:
    reason = rotation_reason(
        policy,
        messages_sent=messages_sent,
        created_at_ms=created_at_ms,
        now_ms=now_ms,
        member_removed=member_removed,
    )
    return reason is not None


# Sessions ---------------------------------------------------------------------------------


class OutboundGroupSession:
    """This device's sending session for one group. Holds no I/O; callers persist pickles."""

    _KIND: Final = b"outbound"

    def __init__(self, session: vodozemac.GroupSession, created_at_ms: int, pickle_key: bytes):
        _check_pickle_key(pickle_key)
        self._session = session
        self._created_at_ms = created_at_ms
        self._pickle_key = bytes(pickle_key)

    @classmethod
    def create(cls, pickle_key: bytes, now_ms: int) -> OutboundGroupSession:
        if type(now_ms) is not int or not 0 <= now_ms <= MAX_TIME_MS:
            raise ValueError("now_ms must be an integer in 0..2**53-1")
        return cls(vodozemac.GroupSession(), now_ms, pickle_key)

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def message_index(self) -> int:
        """The index the next message will use, which is also how many were sent."""
        return self._session.message_index

    @property
    def created_at_ms(self) -> int:
        return self._created_at_ms

    def session_key(self) -> str:
        """The signed session key at the *current* index (base64), to share over Olm: whoever
        receives it can decrypt this and later messages, never earlier ones."""
        return self._session.session_key.to_base64()

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt one (already padded) content; the ciphertext goes once to every member.

        Persist :meth:`pickle` before uploading the ciphertext: a crash that restores an older
        pickle would encrypt a different message at an index already sent, which receivers
        refuse as a replay.
        """
        if self._session.message_index >= MAX_MESSAGE_INDEX:
            raise CryptoError("Megolm session is exhausted; rotate it", code=BAD_KEY)
        return bytes(self._session.encrypt(plaintext).to_bytes())

    def must_rotate(self, policy: RotationPolicy, now_ms: int, member_removed: bool) -> bool:
        return must_rotate(
            policy,
            messages_sent=self.message_index,
            created_at_ms=self._created_at_ms,
            now_ms=now_ms,
            member_removed=member_removed,
        )

    def pickle(self) -> str:
        obj = {"session": self._session.pickle(self._pickle_key), "created": self._created_at_ms}
        return _seal(self._KIND, obj, self._pickle_key)

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> OutboundGroupSession:
        obj = _unseal(cls._KIND, pickled, pickle_key)
        try:
            session = vodozemac.GroupSession.from_pickle(obj["session"], pickle_key)
            created = obj["created"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CryptoError(f"cannot unpickle Megolm session: {exc}", code=BAD_KEY) from None
        if type(created) is not int:
            raise CryptoError("Megolm pickle has no creation time", code=BAD_KEY)
        return cls(session, created, pickle_key)


@dataclass(frozen=True)
class GroupPlaintext:
    plaintext: bytes
    message_index: int
    # The same ciphertext decrypted before (a retransmission); the content's client message id
    # lets the caller show it once.
    duplicate: bool


class InboundGroupSession:
    """Another device's group session as this device knows it, with its replay record."""

    _KIND: Final = b"inbound"

    def __init__(
        self,
        session: vodozemac.InboundGroupSession,
        pickle_key: bytes,
        seen: dict[int, bytes] | None = None,
    ) -> None:
        _check_pickle_key(pickle_key)
        self._session = session
        self._pickle_key = bytes(pickle_key)
        self._seen: dict[int, bytes] = dict(seen or {})

    @classmethod
    def from_group_key(
        cls,
        *,
        group_id: str,
        session_id: str,
        session_key: str,
        signature: str,
        sender_ed25519: str,
        pickle_key: bytes,
    ) -> InboundGroupSession:
        """A session from a ``group_key`` content that arrived over Olm from a device whose
        Ed25519 key (``sender_ed25519``) the caller verified through its device binding.

        Refuses (SignatureError) a signature that does not bind the session to that device and
        group, and (CryptoError ``bad_key``) a key that is malformed, not self-signed by the
        session (vodozemac checks), or of a different session than the content names.
        """
        verify_ed25519(sender_ed25519, group_key_payload(group_id, session_id), signature)
        try:
            session = vodozemac.InboundGroupSession(vodozemac.SessionKey(session_key))
        except ValueError as exc:
            raise CryptoError(f"bad Megolm session key: {exc}", code=BAD_KEY) from None
        if session.session_id != session_id:
            raise CryptoError("session key belongs to another session", code=BAD_KEY)
        return cls(session, pickle_key)

    @classmethod
    def from_exported(cls, exported_key: str, pickle_key: bytes) -> InboundGroupSession:
        """A session from an exported (unsigned) key at some index, e.g. a key backup."""
        try:
            key = vodozemac.ExportedSessionKey(exported_key)
            session = vodozemac.InboundGroupSession.import_session(key)
        except ValueError as exc:
            raise CryptoError(f"bad exported Megolm key: {exc}", code=BAD_KEY) from None
        return cls(session, pickle_key)

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def first_known_index(self) -> int:
        return self._session.first_known_index

    def export_at(self, index: int) -> str | None:
        """The key from ``index`` on (base64), or None if the session does not reach back."""
        if not 0 <= index <= MAX_MESSAGE_INDEX:
            raise ValueError("index must be a u32")
        exported = self._session.export_at(index)
        return None if exported is None else exported.to_base64()

    def decrypt(self, ciphertext: bytes) -> GroupPlaintext:
        """Decrypt and authenticate one message; DecryptError on failure, changing nothing.

        Codes: ``unknown_index`` for a message sent before this device got the key (a late
        joiner), ``replayed`` for a second, different ciphertext at an index already used,
        ``decrypt_failed`` otherwise (tampered, malformed, another session, too many indices).
        """
        if len(ciphertext) > MAX_MESSAGE_BYTES:
            raise DecryptError(f"Megolm message exceeds {MAX_MESSAGE_BYTES} bytes")
        try:
            message = vodozemac.MegolmMessage.from_bytes(ciphertext)
        except ValueError as exc:
            raise DecryptError(f"malformed Megolm message: {exc}") from None
        index = message.message_index()
        if index < self._session.first_known_index:
            raise DecryptError(
                f"message index {index} precedes the first known index "
                f"{self._session.first_known_index}",
                code=UNKNOWN_INDEX,
            )
        digest = hashlib.sha256(ciphertext).digest()[:_DIGEST_LEN]
        previous = self._seen.get(index)
        if previous is None and len(self._seen) >= MAX_TRACKED_INDICES:
            raise DecryptError("session decrypted too many messages; the sender must rotate")
        try:
            decrypted = self._session.decrypt(message)
        except ValueError as exc:
            raise DecryptError(f"cannot decrypt Megolm message: {exc}") from None
        # Checked after authentication so that garbage cannot be reported as a replay.
        if previous is not None and previous != digest:
            raise DecryptError(f"message index {index} was already used", code=REPLAYED)
        self._seen[index] = digest
        return GroupPlaintext(
            plaintext=bytes(decrypted.plaintext),
            message_index=index,
            duplicate=previous is not None,
        )

    def pickle(self) -> str:
        seen = [[i, d.hex()] for i, d in sorted(self._seen.items())]
        obj = {"session": self._session.pickle(self._pickle_key), "seen": seen}
        return _seal(self._KIND, obj, self._pickle_key)

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> InboundGroupSession:
        obj = _unseal(cls._KIND, pickled, pickle_key)
        try:
            session = vodozemac.InboundGroupSession.from_pickle(obj["session"], pickle_key)
            seen = {int(i): bytes.fromhex(d) for i, d in obj["seen"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise CryptoError(f"cannot unpickle Megolm session: {exc}", code=BAD_KEY) from None
        return cls(session, pickle_key, seen)
