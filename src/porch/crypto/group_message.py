"""The body of a kind-2 (Megolm) envelope: which group and session a group message belongs to.

Issue 7 spec E, docs/protocol.md "Group message body":

    0x01 || u8 len(group id) || group id (UTF-8) || session id (32 raw bytes) || Megolm message

The same body goes to every member device (one shared payload, spec A). The receiver reads the
group id and session id before decrypting to pick the inbound session, which it accepts only
from the device that shared it for that group (porch.client.core.groups). Nothing here is
secret: the server sees that a message is a group message anyway; the session id is public.
Malformed bodies are refused unread with DecryptError ``decrypt_failed``, an unknown first byte
with CryptoError ``unsupported_version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from porch.crypto.errors import UNSUPPORTED_VERSION, CryptoError, DecryptError
from porch.crypto.megolm import MAX_GROUP_ID_BYTES, MAX_MESSAGE_BYTES
from porch.protocol.codec import b64decode, b64encode

BODY_VERSION: Final = 0x01
SESSION_ID_LEN: Final = 32
# A vodozemac Megolm message: version, index, at least one AES block, 8-byte MAC, signature.
MIN_MEGOLM_BYTES: Final = 1 + 2 + 16 + 8 + 64
MAX_BODY_BYTES: Final = 1 + 1 + MAX_GROUP_ID_BYTES + SESSION_ID_LEN + MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class GroupMessage:
    group_id: str
    session_id: str  # unpadded base64 of the 32-byte session key, as vodozemac names it
    ciphertext: bytes  # vodozemac's binary Megolm message


def _group_id_bytes(group_id: str) -> bytes:
    try:
        raw = group_id.encode("utf-8")
    except UnicodeEncodeError:
        raise CryptoError("group id is not valid Unicode") from None
    if not raw or len(raw) > MAX_GROUP_ID_BYTES or b"\x00" in raw:
        raise CryptoError(f"group id must be 1..{MAX_GROUP_ID_BYTES} bytes without NUL")
    return raw


def encode_group_message(message: GroupMessage) -> bytes:
    """The envelope body for a Megolm ciphertext; CryptoError for out-of-bounds fields."""
    raw_id = _group_id_bytes(message.group_id)
    try:
        session = b64decode(message.session_id)
    except ValueError:
        raise CryptoError("session id is not base64") from None
    if len(session) != SESSION_ID_LEN:
        raise CryptoError(f"session id must be {SESSION_ID_LEN} bytes")
    if not MIN_MEGOLM_BYTES <= len(message.ciphertext) <= MAX_MESSAGE_BYTES:
        raise CryptoError(f"Megolm message must be {MIN_MEGOLM_BYTES}..{MAX_MESSAGE_BYTES} bytes")
    return bytes([BODY_VERSION, len(raw_id)]) + raw_id + session + message.ciphertext


def decode_group_message(body: bytes) -> GroupMessage:
    """Split a kind-2 envelope body; nothing is decrypted here."""
    if len(body) > MAX_BODY_BYTES:
        raise DecryptError(f"group message body exceeds {MAX_BODY_BYTES} bytes")
    if len(body) < 2:
        raise DecryptError("group message body is too short")
    if body[0] != BODY_VERSION:
        raise CryptoError(
            f"group message body version {body[0]} is not supported", code=UNSUPPORTED_VERSION
        )
    id_len = body[1]
    if not 1 <= id_len <= MAX_GROUP_ID_BYTES:
        raise DecryptError(f"group id length must be 1..{MAX_GROUP_ID_BYTES}")
    start = 2 + id_len
    raw_id = body[2:start]
    session = body[start : start + SESSION_ID_LEN]
    ciphertext = body[start + SESSION_ID_LEN :]
    if len(raw_id) != id_len or len(session) != SESSION_ID_LEN:
        raise DecryptError("group message body is truncated")
    if len(ciphertext) < MIN_MEGOLM_BYTES:
        raise DecryptError("group message body holds no Megolm message")
    if b"\x00" in raw_id:
        raise DecryptError("group id contains NUL")
    try:
        group_id = raw_id.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptError("group id is not valid UTF-8") from None
    return GroupMessage(group_id, b64encode(session), bytes(ciphertext))
