"""Errors raised by the crypto layer, each with a stable machine-readable ``code``.

Codes never change meaning once released, like the wire codes in ``porch.protocol.errors``:
the SDK and the CLI branch on them, while the message is for people.
"""

from __future__ import annotations

from typing import ClassVar

BAD_SIGNATURE = "bad_signature"
DECRYPT_FAILED = "decrypt_failed"
BAD_CONTENT = "bad_content"
BAD_KEY = "bad_key"
PROFILE_LOCKED = "profile_locked"
BAD_PROVISIONING = "bad_provisioning"
UNSUPPORTED_VERSION = "unsupported_version"
# Megolm and the sealed group state (docs/protocol.md, "Megolm group sessions").
REPLAYED = "replayed"
UNKNOWN_INDEX = "unknown_index"
STALE_REVISION = "stale_revision"
# No inbound Megolm session from that device for that group (yet): its group_key has not come.
UNKNOWN_SESSION = "unknown_session"
# Attachments (docs/protocol.md, "Attachment encryption"): a blob whose length, digest, MAC or
# padding is wrong is tampered; a bad key, iv, size or byte count passed in is invalid.
ATTACHMENT_TAMPERED = "attachment_tampered"
ATTACHMENT_INVALID = "attachment_invalid"


class CryptoError(Exception):
    """Base class; ``code`` is one of the module-level code constants."""

    default_code: ClassVar[str] = BAD_KEY

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = code if code is not None else self.default_code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class SignatureError(CryptoError):
    """A signature does not verify, or the key or signature is malformed."""

    default_code = BAD_SIGNATURE


class DecryptError(CryptoError):
    """A ciphertext could not be decrypted or authenticated (tampered, replayed, wrong key).

    Megolm refines the code: ``"replayed"`` when a message index already decrypted a
    different ciphertext, ``"unknown_index"`` when the message precedes the first index the
    session knows (sent before this device got the key), ``"unknown_session"`` when no session
    from the sending device for that group is known; a sealed group state older than one
    already seen is ``"stale_revision"``.
    """

    default_code = DECRYPT_FAILED


class ContentError(CryptoError):
    """A decrypted message content is malformed (padding, JSON, types, limits)."""

    default_code = BAD_CONTENT


class ProfileKeyError(CryptoError):
    """The profile key cannot be obtained: unsafe key file, wrong passphrase, missing keyring.

    ``code`` is ``"profile_locked"`` when the key exists but the user must unlock it (for example
    by setting ``PORCH_PASSPHRASE``), ``"bad_key"`` when key material is corrupt or unsafe.
    """

    default_code = BAD_KEY


class ProvisioningError(CryptoError):
    """A provisioning URI or decrypted provision message is malformed (``bad_provisioning``), or
    a URI, envelope or message has a version this client does not know
    (``unsupported_version``). Tampered envelopes raise :class:`DecryptError` instead."""

    default_code = BAD_PROVISIONING


class AttachmentTampered(CryptoError):
    """A downloaded attachment blob fails its check: wrong length, digest, MAC or padding.

    Raised before any plaintext is released (the verifier reads the whole blob first), so a
    caller that sees it has nothing to clean up but the ciphertext it downloaded.
    """

    default_code = ATTACHMENT_TAMPERED
