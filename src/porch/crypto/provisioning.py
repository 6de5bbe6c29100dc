"""Provisioning a linked device: the cipher and the ProvisionMessage (the ``porch://link`` URI
that carries the new device's key is in porch.crypto.provisioning_uri).

The new device makes an ephemeral X25519 key pair and shows its public key in a provisioning
URI (as text and as a QR code); the primary device encrypts a :class:`ProvisionMessage` to that
key and sends the envelope through the server's short-lived provisioning channel.

The cipher is Signal's ProvisioningCipher (read from signalapp/Signal-Desktop
``ts/textsecure/ProvisioningCipher.ts`` and Signal-Android's ``PrimaryProvisioningCipher``; this is
our own implementation): X25519 agreement between the primary's fresh ephemeral key and the new
device's key, HKDF-SHA256 with a 32-byte zero salt to 64 bytes (AES key, then MAC key),
AES-256-CBC with PKCS#7 and a random 16-byte IV, then HMAC-SHA256 over everything before the
MAC (encrypt-then-MAC), checked in constant time before anything is decrypted. Where Porch
differs (docs/protocol.md, "Provisioning (linking a device)"):

- the HKDF info is ``"porch/provision/v1"`` followed by both public keys (the new device's,
  then the primary's ephemeral one), binding the keys to this exchange as HPKE's DHKEM does
  (RFC 9180, ``kem_context``), instead of ``"TextSecure Provisioning Message"``;
- the envelope is a fixed binary layout (version, ephemeral key, IV, ciphertext, MAC) instead
  of a protobuf, and the MAC covers the ephemeral key too;
- the plaintext is canonical JSON padded to a 512-byte bucket, so the server learns nothing
  from the length (whether there is a username, how long the phone number is).

Sans-IO: bytes and strings in, values out. Randomness comes from ``os.urandom`` unless the
caller passes the ephemeral key and IV (:func:`encrypt_provision_with`), which the test vectors
use.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from porch.crypto.errors import (
    BAD_PROVISIONING,
    UNSUPPORTED_VERSION,
    DecryptError,
    ProvisioningError,
)
from porch.protocol.codec import b64decode, b64encode

ENVELOPE_VERSION: Final = 1
MESSAGE_VERSION: Final = 1
KDF_INFO: Final = b"porch/provision/v1"
KEY_LEN: Final = 32
IV_LEN: Final = 16
MAC_LEN: Final = 32
AES_BLOCK: Final = 16
# The padded plaintext is a multiple of PAD_BLOCK; a v1 message at its largest fields is well
# under 512 bytes, so every envelope a v1 sender makes has the same length.
PAD_BLOCK: Final = 512
MAX_PADDED_LEN: Final = 2 * PAD_BLOCK
_HEADER_LEN: Final = 1 + KEY_LEN + IV_LEN  # version, ephemeral key, IV
MIN_ENVELOPE_LEN: Final = _HEADER_LEN + AES_BLOCK + MAC_LEN
# PKCS#7 always adds 1..16 bytes, so the ciphertext of MAX_PADDED_LEN bytes is one block longer.
MAX_ENVELOPE_LEN: Final = _HEADER_LEN + MAX_PADDED_LEN + AES_BLOCK + MAC_LEN

MAX_DEVICE_ID: Final = 2**31 - 1  # the wire's device id range (docs/protocol.md, section 2)
MAX_CODE_LEN: Final = 128
UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PHONE_RE: Final = re.compile(r"\+[1-9][0-9]{1,14}")  # E.164: at most 15 digits
_USERNAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{2,31}")  # normalised (section 2)
_CODE_RE: Final = re.compile(rf"[!-~]{{1,{MAX_CODE_LEN}}}")  # printable ASCII, no space
_REQUIRED: Final = ("account_id", "master_seed", "phone", "provisioning_code", "primary_device_id")


@dataclass(frozen=True)
class ProvisionMessage:
    """What the primary device gives a new device of the same account.

    ``master_seed`` is the account's 32-byte Ed25519 master key seed (the new device signs its
    own device binding with it); ``provisioning_code`` is the server's one-time code for adding
    the device; ``primary_device_id`` is the device that sent it.
    """

    account_id: str
    master_seed: bytes
    phone: str
    username: str | None
    provisioning_code: str
    primary_device_id: int

    def __repr__(self) -> str:
        # Never let the master key or the provisioning code reach logs through a repr.
        return f"ProvisionMessage(account_id={self.account_id!r}, device={self.primary_device_id})"


def _bad(message: str) -> ProvisioningError:
    return ProvisioningError(message, code=BAD_PROVISIONING)


def _validate(msg: ProvisionMessage) -> None:
    if not isinstance(msg.account_id, str) or not UUID_RE.fullmatch(msg.account_id):
        raise _bad("account_id must be a lowercase UUID")
    if not isinstance(msg.master_seed, bytes) or len(msg.master_seed) != KEY_LEN:
        raise _bad(f"master_seed must be {KEY_LEN} bytes")
    if not isinstance(msg.phone, str) or not _PHONE_RE.fullmatch(msg.phone):
        raise _bad("phone must be an E.164 number with a leading +")
    if msg.username is not None and (
        not isinstance(msg.username, str) or not _USERNAME_RE.fullmatch(msg.username)
    ):
        raise _bad("username must be null or a normalised username")
    if not isinstance(msg.provisioning_code, str) or not _CODE_RE.fullmatch(msg.provisioning_code):
        raise _bad(f"provisioning_code must be 1..{MAX_CODE_LEN} printable ASCII characters")
    device = msg.primary_device_id
    if isinstance(device, bool) or not isinstance(device, int) or not 1 <= device <= MAX_DEVICE_ID:
        raise _bad(f"primary_device_id must be an integer in 1..{MAX_DEVICE_ID}")


def provision_message_to_json(msg: ProvisionMessage) -> bytes:
    """The canonical JSON (sorted keys, compact, ASCII) of a message; ProvisioningError if bad."""
    _validate(msg)
    obj = {
        "v": MESSAGE_VERSION,
        "account_id": msg.account_id,
        "master_seed": b64encode(msg.master_seed),
        "phone": msg.phone,
        "username": msg.username,
        "provisioning_code": msg.provisioning_code,
        "primary_device_id": msg.primary_device_id,
    }
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("ascii")


def provision_message_from_json(raw: bytes) -> ProvisionMessage:
    """Parse and validate the JSON; unknown fields are ignored, an unknown ``v`` is refused."""
    try:
        obj: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad("provision message is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise _bad("provision message must be a JSON object")
    version = obj.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _bad("provision message has no integer version")
    if version != MESSAGE_VERSION:
        raise ProvisioningError(
            f"provision message version {version} is not supported (only {MESSAGE_VERSION})",
            code=UNSUPPORTED_VERSION,
        )
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise _bad(f"provision message lacks {', '.join(missing)}")
    try:
        seed = b64decode(obj["master_seed"]) if isinstance(obj["master_seed"], str) else b""
    except ValueError:
        seed = b""
    msg = ProvisionMessage(  # field types are checked by _validate
        account_id=obj["account_id"],
        master_seed=seed,
        phone=obj["phone"],
        username=obj.get("username"),
        provisioning_code=obj["provisioning_code"],
        primary_device_id=obj["primary_device_id"],
    )
    _validate(msg)
    return msg


def pad_plaintext(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding (0x80, then zeros) to a multiple of PAD_BLOCK."""
    marked = data + b"\x80"
    return marked + b"\x00" * (-len(marked) % PAD_BLOCK)


def _unpad_plaintext(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise _bad("provision message has no padding marker")
    return stripped[:-1]


def derive_keys(shared: bytes, recipient_pub: bytes, ephemeral_pub: bytes) -> tuple[bytes, bytes]:
    """(AES key, MAC key) from the X25519 shared secret and both public keys."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=2 * KEY_LEN,
        salt=b"\x00" * KEY_LEN,  # Signal's zero salt
        info=KDF_INFO + recipient_pub + ephemeral_pub,
    ).derive(shared)
    return okm[:KEY_LEN], okm[KEY_LEN:]


def _agree(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        # A low-order point gives the all-zero secret, which cryptography refuses (RFC 7748, 6.1).
        raise DecryptError("provisioning key agreement failed") from None


def _mac(mac_key: bytes, data: bytes) -> hmac.HMAC:
    h = hmac.HMAC(mac_key, hashes.SHA256())
    h.update(data)
    return h


def encrypt_provision_with(
    plaintext: bytes, recipient_public: bytes, ephemeral: X25519PrivateKey, iv: bytes
) -> bytes:
    """The envelope for an already padded plaintext, with the ephemeral key and IV given.

    Deterministic, for the test vectors; callers use :func:`encrypt_provision`, which draws
    both at random. ValueError on wrong lengths.
    """
    if len(recipient_public) != KEY_LEN or len(iv) != IV_LEN:
        raise ValueError(f"recipient key must be {KEY_LEN} bytes and IV {IV_LEN} bytes")
    if not plaintext or len(plaintext) > MAX_PADDED_LEN:
        raise ValueError(f"plaintext must be 1..{MAX_PADDED_LEN} bytes")
    ephemeral_pub = ephemeral.public_key().public_bytes_raw()
    aes_key, mac_key = derive_keys(
        _agree(ephemeral, recipient_public), recipient_public, ephemeral_pub
    )
    padder = padding.PKCS7(AES_BLOCK * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES256(aes_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    body = bytes([ENVELOPE_VERSION]) + ephemeral_pub + iv + ciphertext
    return body + _mac(mac_key, body).finalize()


def encrypt_provision(msg: ProvisionMessage, recipient_public: bytes) -> bytes:
    """Encrypt a message to the new device's public key (from its provisioning URI)."""
    plaintext = pad_plaintext(provision_message_to_json(msg))
    return encrypt_provision_with(
        plaintext, recipient_public, X25519PrivateKey.generate(), os.urandom(IV_LEN)
    )


class ProvisioningKeyPair:
    """The new device's ephemeral X25519 key pair; it lives only while linking."""

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public_bytes: bytes = private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> ProvisioningKeyPair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> ProvisioningKeyPair:
        """Load from 32 private bytes (the test vectors); ValueError if not 32 bytes."""
        if len(raw) != KEY_LEN:
            raise ValueError(f"X25519 private key must be {KEY_LEN} bytes, got {len(raw)}")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def decrypt_padded(self, envelope: bytes) -> bytes:
        """Check and decrypt an envelope to the padded plaintext.

        ProvisioningError (``unsupported_version``) for another envelope version; DecryptError
        (``decrypt_failed``) for a wrong length, a wrong key or any tampering.
        """
        if not MIN_ENVELOPE_LEN <= len(envelope) <= MAX_ENVELOPE_LEN:
            raise DecryptError(
                f"provisioning envelope must be {MIN_ENVELOPE_LEN}..{MAX_ENVELOPE_LEN} bytes"
            )
        if envelope[0] != ENVELOPE_VERSION:
            raise ProvisioningError(
                f"provisioning envelope version {envelope[0]} is not supported",
                code=UNSUPPORTED_VERSION,
            )
        body, tag = envelope[:-MAC_LEN], envelope[-MAC_LEN:]
        ephemeral_pub = body[1 : 1 + KEY_LEN]
        iv = body[1 + KEY_LEN : _HEADER_LEN]
        ciphertext = body[_HEADER_LEN:]
        if len(ciphertext) % AES_BLOCK:
            raise DecryptError("provisioning ciphertext is not a whole number of blocks")
        aes_key, mac_key = derive_keys(
            _agree(self._private, ephemeral_pub), self.public_bytes, ephemeral_pub
        )
        try:
            _mac(mac_key, body).verify(tag)  # constant-time comparison
        except InvalidSignature:
            raise DecryptError("provisioning envelope does not authenticate") from None
        decryptor = Cipher(algorithms.AES256(aes_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(AES_BLOCK * 8).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            # Only a sender with the MAC key can get here; no padding oracle is exposed.
            raise DecryptError("provisioning plaintext has bad PKCS#7 padding") from None

    def decrypt(self, envelope: bytes) -> ProvisionMessage:
        """Decrypt and parse; ProvisioningError (``bad_provisioning``) on a malformed message."""
        return provision_message_from_json(_unpad_plaintext(self.decrypt_padded(envelope)))

    def __repr__(self) -> str:
        return f"ProvisioningKeyPair(public={b64url_key(self.public_bytes)})"


def b64url_key(raw: bytes) -> str:
    """Unpadded base64url (RFC 4648, section 5) of a key, as the URI carries it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
