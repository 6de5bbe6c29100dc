"""Ed25519 signatures binding devices to accounts and one-time keys to devices.

Layouts are in docs/protocol.md, "Keys and signatures", with test vectors in
tests/vectors/crypto.json. Each payload starts with a NUL-terminated domain-separation label
(``porch/device/v1``, ``porch/otk/v1``) so a signature made for one purpose can never be replayed
as another, and variable-length strings are NUL-terminated so no two field tuples encode to the
same bytes (which is why NUL is refused inside them). Integers are fixed-width big-endian.

Ed25519 (RFC 8032) is deterministic, so the same key and payload always give the same
signature; the vectors rely on that.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from porch.crypto.errors import SignatureError
from porch.protocol.codec import b64decode, b64encode

DEVICE_LABEL = b"porch/device/v1\x00"
OTK_LABEL = b"porch/otk/v1\x00"
DEVICE_LIST_LABEL = b"porch/device-list/v1\x00"
# An account has at most 64 devices (PORCH_MAX_DEVICES is 1..64): a list is at most this long.
MAX_LISTED_DEVICES = 64
_U64_MAX = 2**64 - 1
KEY_LEN = 32
SIGNATURE_LEN = 64
_U32_MAX = 2**32 - 1
_ENTRY_LEN = 4 + 4 + KEY_LEN  # device id, registration id, Ed25519 key


def _raw_key(name: str, key_b64: str) -> bytes:
    raw = b64decode(key_b64)  # ValueError on bad base64
    if len(raw) != KEY_LEN:
        raise ValueError(f"{name} must be {KEY_LEN} bytes, got {len(raw)}")
    return raw


def _u32(name: str, value: int) -> bytes:
    if isinstance(value, bool) or not 0 <= value <= _U32_MAX:
        raise ValueError(f"{name} must be an integer in 0..2**32-1")
    return value.to_bytes(4, "big")


def device_binding_payload(
    account_id: str, device_id: int, registration_id: int, curve25519: str, ed25519: str
) -> bytes:
    """Bytes the master key signs to vouch that a device's keys belong to the account.

    Raises ValueError on malformed input (non-ASCII or NUL in ``account_id``, ids outside
    32 bits, keys that are not 32 bytes of base64).
    """
    if not account_id.isascii() or "\x00" in account_id:
        raise ValueError("account_id must be ASCII without NUL")
    return (
        DEVICE_LABEL
        + account_id.encode("ascii")
        + b"\x00"
        + _u32("device_id", device_id)
        + _u32("registration_id", registration_id)
        + _raw_key("curve25519", curve25519)
        + _raw_key("ed25519", ed25519)
    )


def one_time_key_payload(key_id: str, curve25519: str, fallback: bool) -> bytes:
    """Bytes a device's Ed25519 key signs for each published one-time or fallback key.

    The fallback flag is signed so the server cannot present a reusable fallback key as a
    one-time key or vice versa. Raises ValueError on malformed input.
    """
    if "\x00" in key_id:
        raise ValueError("key_id must not contain NUL")
    return (
        OTK_LABEL
        + key_id.encode("utf-8")
        + b"\x00"
        + _raw_key("curve25519", curve25519)
        + (b"\x01" if fallback else b"\x00")
    )


@dataclass(frozen=True, slots=True)
class ListedDevice:
    """One device of a signed device list: its id, registration id and Ed25519 key (base64)."""

    device_id: int
    registration_id: int
    ed25519: str


@dataclass(frozen=True, slots=True)
class DeviceList:
    """An account's devices as its master key vouches for them (docs/protocol.md, section 7,
    "Device list"). ``devices`` is sorted by device id."""

    account_id: str
    version: int
    devices: tuple[ListedDevice, ...]

    @property
    def device_ids(self) -> frozenset[int]:
        return frozenset(d.device_id for d in self.devices)


def device_list_payload(account_id: str, version: int, devices: list[ListedDevice]) -> bytes:
    """Bytes the master key signs to say which devices the account has now.

    ``label || account id || 0x00 || version u64 || count u16 || (device id u32 || registration
    id u32 || ed25519 32 bytes) * count``, sorted by device id (spec C). ValueError on bad input:
    a repeated device id, more than MAX_LISTED_DEVICES, ids outside their ranges.
    """
    if not account_id.isascii() or "\x00" in account_id:
        raise ValueError("account_id must be ASCII without NUL")
    if isinstance(version, bool) or not 1 <= version <= _U64_MAX:
        raise ValueError("version must be an integer in 1..2**64-1")
    ordered = sorted(devices, key=lambda d: d.device_id)
    if len({d.device_id for d in ordered}) != len(ordered):
        raise ValueError("a device is listed twice")
    if not 1 <= len(ordered) <= MAX_LISTED_DEVICES:
        raise ValueError(f"a device list has 1..{MAX_LISTED_DEVICES} devices")
    out = bytearray(DEVICE_LIST_LABEL + account_id.encode("ascii") + b"\x00")
    out += version.to_bytes(8, "big") + len(ordered).to_bytes(2, "big")
    for d in ordered:
        if not 1 <= d.device_id <= 2**31 - 1:
            raise ValueError("device ids are 1..2**31-1")
        out += _u32("device_id", d.device_id) + _u32("registration_id", d.registration_id)
        out += _raw_key("ed25519", d.ed25519)
    return bytes(out)


def parse_device_list(payload: bytes) -> DeviceList:
    """The inverse of :func:`device_list_payload`; ValueError unless the bytes are exactly what
    it would build (label, sorted unique ids, no trailing bytes)."""
    if not payload.startswith(DEVICE_LIST_LABEL):
        raise ValueError("not a porch/device-list/v1 payload")
    rest = payload[len(DEVICE_LIST_LABEL) :]
    end = rest.find(b"\x00")
    if end < 1:
        raise ValueError("device list has no account id")
    try:
        account_id = rest[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("device list account id is not ASCII") from None
    rest = rest[end + 1 :]
    if len(rest) < 10:
        raise ValueError("device list is truncated")
    version = int.from_bytes(rest[:8], "big")
    n = int.from_bytes(rest[8:10], "big")
    body = rest[10:]
    if len(body) != n * _ENTRY_LEN:
        raise ValueError("device list length does not match its count")
    devices = []
    for i in range(n):
        entry = body[i * _ENTRY_LEN : (i + 1) * _ENTRY_LEN]
        devices.append(
            ListedDevice(
                int.from_bytes(entry[:4], "big"),
                int.from_bytes(entry[4:8], "big"),
                b64encode(entry[8:]),
            )
        )
    parsed = DeviceList(account_id, version, tuple(devices))
    if device_list_payload(account_id, version, devices) != payload:
        raise ValueError("device list is not in canonical order")
    return parsed


def verify_device_list(master_public_b64: str, payload: bytes, signature_b64: str) -> DeviceList:
    """The parsed list, if the master key signed exactly these bytes; SignatureError if not
    (a malformed payload included)."""
    try:
        parsed = parse_device_list(payload)
    except ValueError as exc:
        raise SignatureError(f"malformed device list: {exc}") from None
    verify_ed25519(master_public_b64, payload, signature_b64)
    return parsed


def verify_ed25519(public_key_b64: str, payload: bytes, signature_b64: str) -> None:
    """Verify an Ed25519 signature; SignatureError on mismatch or malformed key/signature."""
    try:
        public = Ed25519PublicKey.from_public_bytes(_raw_key("public key", public_key_b64))
        signature = b64decode(signature_b64)
    except ValueError as exc:
        raise SignatureError(f"malformed key or signature: {exc}") from None
    if len(signature) != SIGNATURE_LEN:
        raise SignatureError(f"signature must be {SIGNATURE_LEN} bytes, got {len(signature)}")
    try:
        public.verify(signature, payload)
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None


class MasterKey:
    """An account's long-term Ed25519 signing key, which vouches for each of its devices."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._public_b64 = b64encode(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> MasterKey:
        """Load from the 32-byte RFC 8032 seed; ValueError if it is not 32 bytes."""
        if len(raw) != KEY_LEN:
            raise ValueError(f"master key seed must be {KEY_LEN} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_b64(self) -> str:
        return self._public_b64

    def sign(self, payload: bytes) -> str:
        return b64encode(self._private.sign(payload))

    def sign_device(
        self, account_id: str, device_id: int, registration_id: int, curve25519: str, ed25519: str
    ) -> str:
        return self.sign(
            device_binding_payload(account_id, device_id, registration_id, curve25519, ed25519)
        )

    def sign_device_list(self, account_id: str, version: int, devices: list[ListedDevice]) -> str:
        return self.sign(device_list_payload(account_id, version, devices))

    def __repr__(self) -> str:
        # Never let the private key reach logs through a repr.
        return f"MasterKey(public={self._public_b64})"


def verify_device_binding(
    master_public_b64: str,
    account_id: str,
    device_id: int,
    registration_id: int,
    curve25519: str,
    ed25519: str,
    signature_b64: str,
) -> None:
    """SignatureError unless the master key signed exactly this device binding."""
    try:
        payload = device_binding_payload(
            account_id, device_id, registration_id, curve25519, ed25519
        )
    except ValueError as exc:
        raise SignatureError(f"malformed device binding: {exc}") from None
    verify_ed25519(master_public_b64, payload, signature_b64)


def verify_one_time_key(
    device_ed25519_b64: str, key_id: str, curve25519: str, fallback: bool, signature_b64: str
) -> None:
    """SignatureError unless the device's Ed25519 key signed exactly this one-time key."""
    try:
        payload = one_time_key_payload(key_id, curve25519, fallback)
    except ValueError as exc:
        raise SignatureError(f"malformed one-time key: {exc}") from None
    verify_ed25519(device_ed25519_b64, payload, signature_b64)
