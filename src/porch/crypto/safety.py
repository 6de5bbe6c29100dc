"""Safety numbers: Signal's numeric fingerprints over two accounts' master keys.

The algorithm is libsignal's ``NumericFingerprintGenerator`` (read from
signalapp/libsignal ``rust/protocol/src/fingerprint.rs`` and its Java counterpart
``NumericFingerprintGenerator``; this is our own implementation of it). For each account:

    h = SHA-512(0x0000 || key || stable_id || key)
    repeat ``iterations - 1`` times: h = SHA-512(h || key)

The first 30 bytes of ``h``, read as six 5-byte big-endian integers each reduced mod 100000,
give that account's 30 digits; the two halves are concatenated in lexicographic order so both
sides display the same 60 digits. The QR payload carries the first 32 bytes of each ``h`` in
libsignal's ``CombinedFingerprints`` protobuf, and a scan matches when the scanned local half
equals our remote half and vice versa.

What Porch puts in (docs/protocol.md, "Safety numbers"): the stable identifier is the account id
as its 36 ASCII bytes in canonical lowercase UUID form (Signal uses the E.164 number or the ACI),
and the key is ``0xED`` followed by the 32-byte Ed25519 master public key, in the shape of
libsignal's one type byte and key (``0x05`` for Curve25519).

Sans-IO: bytes and strings in, values out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from porch.crypto.errors import CryptoError
from porch.protocol.codec import b64decode

BAD_SAFETY_NUMBER: Final = "bad_safety_number"

# Scannable version 2 is libsignal's current one; only the QR payload carries it.
VERSION: Final = 2
# libsignal's fixed hash-input version (0x0000), independent of VERSION.
HASH_VERSION: Final = b"\x00\x00"
ITERATIONS: Final = 5200
# libsignal refuses iteration counts outside 2..1,000,000; so do we.
MIN_ITERATIONS: Final = 2
MAX_ITERATIONS: Final = 1_000_000
KEY_TYPE_ED25519: Final = 0xED
ED25519_KEY_LEN: Final = 32
DIGITS: Final = 60
GROUP: Final = 5
SCANNABLE_LEN: Final = 32
# Generous bounds for the generic (Signal-compatible) entry point.
MAX_ID_BYTES: Final = 256
MAX_KEY_BYTES: Final = 256
MAX_VERSION: Final = 127  # one varint byte, so a payload is always PAYLOAD_LEN bytes
MAX_PAYLOAD_BYTES: Final = 1024

_UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Protobuf tags: field 1 varint (version), fields 2 and 3 length-delimited (LogicalFingerprint),
# whose field 1 (content) is length-delimited too.
_TAG_VERSION: Final = 0x08
_TAG_LOCAL: Final = 0x12
_TAG_REMOTE: Final = 0x1A
_TAG_CONTENT: Final = 0x0A
_LOGICAL: Final = bytes([SCANNABLE_LEN + 2, _TAG_CONTENT, SCANNABLE_LEN])
PAYLOAD_LEN: Final = 2 + 2 * (1 + len(_LOGICAL) + SCANNABLE_LEN)  # 74


class SafetyNumberError(CryptoError):
    """A scanned safety-number payload is malformed (not a Porch/Signal fingerprint code)."""

    default_code = BAD_SAFETY_NUMBER


class Comparison(StrEnum):
    """Outcome of comparing a scanned QR payload with our own safety number."""

    MATCH = "match"
    MISMATCH = "mismatch"
    DIFFERENT_VERSION = "different_version"


def fingerprint_hash(stable_id: bytes, identity_key: bytes, iterations: int = ITERATIONS) -> bytes:
    """One account's 64-byte iterated SHA-512 fingerprint (libsignal's ``get_fingerprint``).

    ``iterations`` counts every SHA-512 call, the first one included, as libsignal does.
    Raises ValueError on an iteration count or input length out of range.
    """
    if isinstance(iterations, bool) or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in {MIN_ITERATIONS}..{MAX_ITERATIONS}")
    if not 0 < len(stable_id) <= MAX_ID_BYTES:
        raise ValueError(f"stable id must be 1..{MAX_ID_BYTES} bytes")
    if not 0 < len(identity_key) <= MAX_KEY_BYTES:
        raise ValueError(f"identity key must be 1..{MAX_KEY_BYTES} bytes")
    digest = hashlib.sha512(HASH_VERSION + identity_key + stable_id + identity_key).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha512(digest + identity_key).digest()
    return digest


def encode_half(fingerprint: bytes) -> str:
    """30 digits from the first 30 bytes: six 5-byte big-endian chunks, each mod 100000."""
    if len(fingerprint) < 30:
        raise ValueError("fingerprint must be at least 30 bytes")
    return "".join(
        f"{int.from_bytes(fingerprint[i : i + 5], 'big') % 100_000:05d}" for i in range(0, 30, 5)
    )


def format_digits(digits: str) -> str:
    """The 60 digits as 12 space-separated groups of 5, the way both users read them out."""
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"a safety number is {DIGITS} ASCII digits")
    return " ".join(digits[i : i + GROUP] for i in range(0, DIGITS, GROUP))


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise ValueError(f"version must be in 1..{MAX_VERSION}")


def encode_payload(version: int, local: bytes, remote: bytes) -> bytes:
    """The QR payload: libsignal's ``CombinedFingerprints`` protobuf, always 74 bytes.

    Fields in order: version (1, varint), local (2) and remote (3) ``LogicalFingerprint``s,
    each holding its 32 bytes in field 1. Byte-identical to libsignal's ``serialize()``.
    """
    _check_version(version)
    if len(local) != SCANNABLE_LEN or len(remote) != SCANNABLE_LEN:
        raise ValueError(f"scannable fingerprints are {SCANNABLE_LEN} bytes")
    return (
        bytes([_TAG_VERSION, version])
        + bytes([_TAG_LOCAL])
        + _LOGICAL
        + local
        + bytes([_TAG_REMOTE])
        + _LOGICAL
        + remote
    )


def _read_version(payload: bytes) -> tuple[int, int]:
    """(version, offset after it). An absent field 1 means version 0, as in proto3."""
    if payload[0] != _TAG_VERSION:
        return 0, 0
    value = 0
    # A uint32 varint takes at most 5 bytes.
    for i in range(1, min(len(payload), 6)):
        byte = payload[i]
        value |= (byte & 0x7F) << (7 * (i - 1))
        if not byte & 0x80:
            if value > 0xFFFF_FFFF:
                break
            return value, i + 1
    raise SafetyNumberError("bad version field in safety number payload")


def decode_payload(payload: bytes, version: int = VERSION) -> tuple[int, bytes, bytes]:
    """(version, local, remote) from a QR payload; SafetyNumberError unless canonical.

    Only the canonical layout :func:`encode_payload` writes is accepted, so there is exactly one
    byte string per fingerprint. When the payload's version is not the expected ``version`` the
    fingerprints are not parsed (another version may lay them out differently) and come back
    empty, so the caller can say "different version" rather than "malformed".
    """
    if not payload or len(payload) > MAX_PAYLOAD_BYTES:
        raise SafetyNumberError(f"safety number payload must be 1..{MAX_PAYLOAD_BYTES} bytes")
    if payload[0] not in (_TAG_VERSION, _TAG_LOCAL):
        raise SafetyNumberError("not a safety number payload")
    found, offset = _read_version(payload)
    if found != version:
        return found, b"", b""
    # Our versions fit one varint byte; a padded varint (0x82 0x00 for 2) is not canonical.
    if len(payload) != PAYLOAD_LEN or offset != 2:
        raise SafetyNumberError(f"a version {version} payload is {PAYLOAD_LEN} canonical bytes")
    local_at = offset + 1 + len(_LOGICAL)
    remote_tag_at = local_at + SCANNABLE_LEN
    remote_at = remote_tag_at + 1 + len(_LOGICAL)
    if (
        payload[offset : offset + 1] != bytes([_TAG_LOCAL])
        or payload[offset + 1 : local_at] != _LOGICAL
        or payload[remote_tag_at : remote_tag_at + 1] != bytes([_TAG_REMOTE])
        or payload[remote_tag_at + 1 : remote_at] != _LOGICAL
    ):
        raise SafetyNumberError("malformed safety number payload")
    return found, payload[local_at:remote_tag_at], payload[remote_at:]


@dataclass(frozen=True, slots=True)
class SafetyNumber:
    """Both halves of a safety number as seen from the local side."""

    version: int
    local: bytes  # first 32 bytes of the local account's fingerprint hash
    remote: bytes  # first 32 bytes of the remote account's fingerprint hash
    digits: str  # the 60 digits, identical on both sides

    def display(self) -> str:
        """12 groups of 5 digits separated by spaces."""
        return format_digits(self.digits)

    def groups(self) -> tuple[str, ...]:
        return tuple(self.display().split(" "))

    def qr_payload(self) -> bytes:
        """Bytes for the QR code this side shows (local half first, as libsignal does)."""
        return encode_payload(self.version, self.local, self.remote)

    def compare(self, scanned: bytes) -> Comparison:
        """Compare the payload scanned from the other side's screen with ours.

        The other side's local half must equal our remote half and its remote half our local
        half, so scanning one's own code is a mismatch. Both halves are compared in constant
        time and always both, so timing reveals nothing about which half differed.
        SafetyNumberError if the payload is malformed.
        """
        version, their_local, their_remote = decode_payload(scanned, self.version)
        if version != self.version:
            return Comparison.DIFFERENT_VERSION
        same_remote = hmac.compare_digest(their_local, self.remote)
        same_local = hmac.compare_digest(their_remote, self.local)
        return Comparison.MATCH if same_remote & same_local else Comparison.MISMATCH


def numeric_fingerprint(
    local_id: bytes,
    local_key: bytes,
    remote_id: bytes,
    remote_key: bytes,
    *,
    version: int = VERSION,
    iterations: int = ITERATIONS,
) -> SafetyNumber:
    """libsignal's ``Fingerprint::new`` over raw identifier and key bytes.

    Porch code calls :func:`safety_number`; this generic form exists so libsignal's published
    vectors (33-byte Curve25519 identity keys, E.164 identifiers) can check the algorithm.
    """
    _check_version(version)
    local_hash = fingerprint_hash(local_id, local_key, iterations)
    remote_hash = fingerprint_hash(remote_id, remote_key, iterations)
    halves = sorted((encode_half(local_hash), encode_half(remote_hash)))
    return SafetyNumber(
        version=version,
        local=local_hash[:SCANNABLE_LEN],
        remote=remote_hash[:SCANNABLE_LEN],
        digits="".join(halves),
    )


def account_stable_id(account_id: str) -> bytes:
    """The 36 ASCII bytes of a canonical lowercase UUID account id; ValueError otherwise.

    Other spellings of the same UUID (upper case, braces, no hyphens) are refused rather than
    normalised, so a caller's bug cannot make two clients compute different numbers silently.
    """
    if not _UUID_RE.fullmatch(account_id):
        raise ValueError("account id must be a lowercase UUID")
    return account_id.encode("ascii")


def master_identity_key(master_public_b64: str) -> bytes:
    """``0xED`` followed by the 32-byte Ed25519 master public key; ValueError if malformed."""
    raw = b64decode(master_public_b64)  # ValueError on bad base64
    if len(raw) != ED25519_KEY_LEN:
        raise ValueError(f"master public key must be {ED25519_KEY_LEN} bytes, got {len(raw)}")
    return bytes([KEY_TYPE_ED25519]) + raw


def safety_number(
    local_account_id: str,
    local_master_public_b64: str,
    remote_account_id: str,
    remote_master_public_b64: str,
) -> SafetyNumber:
    """The safety number between two Porch accounts, seen from the local one.

    Both sides get the same :attr:`SafetyNumber.digits`; the QR payloads differ (each puts its
    own half first). Raises ValueError on a malformed account id or master key.
    """
    return numeric_fingerprint(
        account_stable_id(local_account_id),
        master_identity_key(local_master_public_b64),
        account_stable_id(remote_account_id),
        master_identity_key(remote_master_public_b64),
    )
