"""The sealed group state: what members know about a group and the server must not.

The server stores a group's id, its members and their roles, and one opaque blob per state
revision. The blob is the group's name, description, avatar reference, disappearing-message
timer and settings, as canonical JSON, padded to a size bucket and sealed with AES-256-GCM
(NIST SP 800-38D) under a 32-byte group state key that members share over Olm (content kind
``group_state_key``). The associated data binds the blob to its group id and revision number,
so the server can neither move a blob to another group nor serve an old revision as a newer
one (docs/protocol.md, "Sealed group state").
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from porch.crypto.content import MAX_SAFE_INTEGER, unpad
from porch.crypto.errors import (
    BAD_KEY,
    STALE_REVISION,
    UNSUPPORTED_VERSION,
    ContentError,
    CryptoError,
    DecryptError,
)

STATE_KEY_LEN: Final = 32
BLOB_VERSION: Final = 0x01
STATE_VERSION: Final = 1
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
HEADER_LEN: Final = 1 + 4  # version, key epoch
AAD_LABEL: Final = b"porch/group-state/v1\x00"
MAX_GROUP_ID_BYTES: Final = 128
MAX_EPOCH: Final = 2**32 - 1

MAX_NAME_CHARS: Final = 128
MAX_DESCRIPTION_CHARS: Final = 1024
MAX_AVATAR_CHARS: Final = 512
MAX_TIMER_SECONDS: Final = 365 * 24 * 3600
# Padded plaintext sizes. Any name (128 characters of up to 4 UTF-8 bytes) with the other fields
# and a description of a few hundred bytes fits the first bucket, so the blob size says nothing
# about the name's length; the largest state allowed (4-byte characters everywhere, escaped
# quotes in the avatar) stays under the last one.
BUCKETS: Final = (1024, 2048, 4096, 8192)
MAX_BLOB_BYTES: Final = HEADER_LEN + NONCE_LEN + BUCKETS[-1] + TAG_LEN


@dataclass(frozen=True)
class GroupSettings:
    members_can_edit: bool = True  # False: only admins change the state
    join_approval: bool = False  # True: an admin approves joins by link


@dataclass(frozen=True)
class GroupState:
    name: str
    description: str = ""
    avatar: str | None = None  # an attachment reference, opaque to this module
    timer_seconds: int = 0  # disappearing messages; 0 is off
    settings: GroupSettings = field(default_factory=GroupSettings)


def _fail(message: str) -> NoReturn:
    raise ContentError(message)


def _check_text(value: Any, what: str, limit: int, *, allow_empty: bool, lines: bool) -> str:
    if not isinstance(value, str):
        _fail(f"{what} must be a string")
    if not allow_empty and not value:
        _fail(f"{what} must not be empty")
    if len(value) > limit:
        _fail(f"{what} exceeds {limit} characters")
    allowed = "\n\t" if lines else ""
    if any(ord(c) < 0x20 and c not in allowed for c in value):
        _fail(f"{what} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(f"{what} is not valid Unicode")
    return str(value)


def _check_state(state: GroupState) -> None:
    _check_fields(
        state.name,
        state.description,
        state.avatar,
        state.timer_seconds,
        state.settings.members_can_edit,
        state.settings.join_approval,
    )


def _check_fields(
    name: Any, description: Any, avatar: Any, timer: Any, can_edit: Any, approval: Any
) -> None:
    _check_text(name, "group name", MAX_NAME_CHARS, allow_empty=False, lines=False)
    _check_text(
        description, "group description", MAX_DESCRIPTION_CHARS, allow_empty=True, lines=True
    )
    if avatar is not None:
        _check_text(avatar, "group avatar", MAX_AVATAR_CHARS, allow_empty=False, lines=False)
    if type(timer) is not int or not 0 <= timer <= MAX_TIMER_SECONDS:
        _fail(f"group timer must be an integer in 0..{MAX_TIMER_SECONDS}")
    if type(can_edit) is not bool or type(approval) is not bool:
        _fail("group settings must be booleans")


def state_to_json(state: GroupState) -> bytes:
    """Canonical JSON of a state (sorted keys, no whitespace, UTF-8 unescaped)."""
    _check_state(state)
    obj = {
        "v": STATE_VERSION,
        "name": state.name,
        "description": state.description,
        "avatar": state.avatar,
        "timer": state.timer_seconds,
        "settings": {
            "members_can_edit": state.settings.members_can_edit,
            "join_approval": state.settings.join_approval,
        },
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def pad_state(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding (as for contents) up to the smallest bucket that fits."""
    for bucket in BUCKETS:
        if len(data) < bucket:
            return data + b"\x80" + b"\x00" * (bucket - len(data) - 1)
    raise ContentError("group state is too large")


def _check_ids(group_id: str, revision: int, epoch: int) -> bytes:
    raw = group_id.encode("utf-8")
    if not raw or len(raw) > MAX_GROUP_ID_BYTES or b"\x00" in raw:
        raise CryptoError(f"group id must be 1..{MAX_GROUP_ID_BYTES} bytes without NUL")
    if type(revision) is not int or not 0 <= revision <= MAX_SAFE_INTEGER:
        raise CryptoError("revision must be an integer in 0..2**53-1")
    if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
        raise CryptoError("key epoch must be an integer in 0..2**32-1")
    return raw


def associated_data(group_id: str, revision: int, header: bytes) -> bytes:
    """label || u16 len(group id) || group id (UTF-8) || u64 revision || header."""
    raw = group_id.encode("utf-8")
    return AAD_LABEL + struct.pack(">H", len(raw)) + raw + struct.pack(">Q", revision) + header


def _check_key(key: bytes) -> None:
    if len(key) != STATE_KEY_LEN:
        raise CryptoError(f"group state key must be {STATE_KEY_LEN} bytes", code=BAD_KEY)


def seal_group_state_with(
    key: bytes, group_id: str, revision: int, epoch: int, state: GroupState, nonce: bytes
) -> bytes:
    """:func:`seal_group_state` with a chosen nonce: for test vectors only. Never reuse a nonce
    under one key (GCM loses both confidentiality and integrity)."""
    _check_key(key)
    _check_ids(group_id, revision, epoch)
    if len(nonce) != NONCE_LEN:
        raise CryptoError(f"nonce must be {NONCE_LEN} bytes")
    header = bytes([BLOB_VERSION]) + struct.pack(">I", epoch)
    padded = pad_state(state_to_json(state))
    sealed = AESGCM(key).encrypt(nonce, padded, associated_data(group_id, revision, header))
    return header + nonce + sealed


def seal_group_state(
    key: bytes, group_id: str, revision: int, epoch: int, state: GroupState
) -> bytes:
    """The blob a member uploads as ``revision`` of the group state, sealed under the state key
    of ``epoch`` (which the blob names, so members know which key opens it)."""
    return seal_group_state_with(key, group_id, revision, epoch, state, os.urandom(NONCE_LEN))


def blob_epoch(blob: bytes) -> int:
    """The key epoch a blob names, read before opening it to pick the key."""
    if len(blob) < HEADER_LEN + NONCE_LEN + TAG_LEN or len(blob) > MAX_BLOB_BYTES:
        raise DecryptError("group state blob has an impossible size")
    if blob[0] != BLOB_VERSION:
        raise ContentError(f"unknown group state blob version {blob[0]}", code=UNSUPPORTED_VERSION)
    epoch: int = struct.unpack(">I", blob[1:HEADER_LEN])[0]
    return epoch


def open_group_state(
    key: bytes, group_id: str, revision: int, blob: bytes, *, min_revision: int = 0
) -> GroupState:
    """Open the blob the server serves as ``revision`` of ``group_id``.

    ``min_revision`` is the newest revision this device has already accepted: anything older
    is refused (DecryptError ``stale_revision``). Refuses with ``decrypt_failed`` a blob that
    was altered, belongs to another group or revision, or is sealed under another key;
    ``unsupported_version`` for an unknown blob or state version; ``bad_content`` for a state
    outside the bounds.
    """
    _check_key(key)
    epoch = blob_epoch(blob)
    _check_ids(group_id, revision, epoch)
    if revision < min_revision:
        raise DecryptError(
            f"group state revision {revision} is older than {min_revision}", code=STALE_REVISION
        )
    header, nonce = blob[:HEADER_LEN], blob[HEADER_LEN : HEADER_LEN + NONCE_LEN]
    try:
        padded = AESGCM(key).decrypt(
            nonce, blob[HEADER_LEN + NONCE_LEN :], associated_data(group_id, revision, header)
        )
    except InvalidTag:
        raise DecryptError("group state does not open (tampered, moved or wrong key)") from None
    return decode_state(unpad(padded))


def decode_state(data: bytes) -> GroupState:
    """Parse state JSON (after unpadding); unknown fields are ignored."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ContentError("group state is not valid JSON") from None
    if not isinstance(obj, dict):
        _fail("group state must be a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != STATE_VERSION:
        raise ContentError(f"unsupported group state version {version!r}", code=UNSUPPORTED_VERSION)
    settings = obj.get("settings")
    if not isinstance(settings, dict):
        _fail("group settings must be an object")
    _check_fields(
        obj.get("name"),
        obj.get("description"),
        obj.get("avatar"),
        obj.get("timer"),
        settings.get("members_can_edit"),
        settings.get("join_approval"),
    )
    return GroupState(
        name=obj["name"],
        description=obj["description"],
        avatar=obj.get("avatar"),
        timer_seconds=obj["timer"],
        settings=GroupSettings(
            members_can_edit=settings["members_can_edit"], join_approval=settings["join_approval"]
        ),
    )
