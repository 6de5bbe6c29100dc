"""Signed URLs for the filesystem backend (spec §6): the signature is the capability.

sig = base64url(HMAC-SHA256(key, "METHOD\\nPATH\\nEXPIRY")) without padding, where EXPIRY is
epoch milliseconds and PATH the URL path without its query. A URL signed for one method,
path or expiry verifies for no other. The key is derived from the server secret (or a
random secret kept in the database), so every node of a cluster derives the same one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable

SIG_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url, no padding
KEY_LABEL = b"porch media url key v1"


def derive_key(secret: bytes) -> bytes:
    """The media URL key for a server secret: a label keyed with it, so this key says nothing
    about the secret's other uses (verification-code hashes)."""
    return hmac.new(secret, KEY_LABEL, hashlib.sha256).digest()


def signature(key: bytes, method: str, path: str, expires: int) -> str:
    message = f"{method.upper()}\n{path}\n{expires}".encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


class UrlSigner:
    """Signs and checks URLs with a key loaded once, on first use (the store may hold it)."""

    def __init__(self, load_key: Callable[[], Awaitable[bytes]]) -> None:
        self._load_key = load_key
        self._key: bytes | None = None

    async def _get_key(self) -> bytes:
        if self._key is None:
            self._key = await self._load_key()
        return self._key

    async def sign(self, method: str, path: str, expires: int) -> str:
        """`path?exp=EXPIRY&sig=SIG`."""
        sig = signature(await self._get_key(), method, path, expires)
        return f"{path}?exp={expires}&sig={sig}"

    async def verify(self, method: str, path: str, expires: int, sig: str, now: int) -> bool:
        """True only for an unexpired URL signed for exactly this method and path."""
        if expires <= now or SIG_RE.fullmatch(sig) is None:
            return False
        expected = signature(await self._get_key(), method, path, expires)
        return hmac.compare_digest(expected, sig)
