"""The Web Push adapter: RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID.

Encryption and the VAPID token come from the web-push-libs building blocks that pywebpush
itself is made of (`http_ece` for aes128gcm, `py_vapid` for the ES256 JWT); the request goes
out on httpx, asynchronously, which pywebpush's requests/aiohttp transports would not give
us without a second HTTP stack. One ephemeral ECDH key per push (RFC 8291 §3.1) is made by
`cryptography`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
import time
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from porch.server.providers.push import PushOutcome, PushResult, PushSubscription, classify

log = logging.getLogger("porch.push")

# RFC 8292 §2: exp at most 24 hours ahead; 12 leaves room for clock skew at the push service.
JWT_LIFETIME_SECONDS = 12 * 3600
# RFC 8291 §4: one record; a push service accepts at least 4096 bytes of body (RFC 8030 §7.2).
RECORD_SIZE = 4096
P256_POINT_BYTES = 65  # uncompressed X9.62 point
AUTH_SECRET_BYTES = 16  # RFC 8291 §3.2


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Strict base64url, padding optional (the browser's PushSubscription.toJSON() form)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


class VapidKey:
    """The server's VAPID key pair (RFC 8292 §3.2): the public half is what browsers get as
    `applicationServerKey`; the private half signs one JWT per push service origin."""

    def __init__(self, private_raw: bytes) -> None:
        if len(private_raw) != 32:
            raise ValueError("a VAPID private key is 32 bytes (base64url, 43 characters)")
        self._key = ec.derive_private_key(int.from_bytes(private_raw, "big"), ec.SECP256R1())
        self._vapid = Vapid02(self._key)
        point = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(point)

    @staticmethod
    def generate_raw() -> bytes:
        """A fresh private key (the server stores it once and every node then uses it)."""
        key = ec.generate_private_key(ec.SECP256R1())
        return key.private_numbers().private_value.to_bytes(32, "big")

    @classmethod
    def from_text(cls, text: str) -> VapidKey:
        """PORCH_VAPID_PRIVATE_KEY: the base64url raw key that `web-push generate-vapid-keys`
        and `vapid --gen` print."""
        return cls(unb64url(text.strip()))

    def authorization(self, endpoint: str, subject: str, now: float) -> str:
        """The `Authorization: vapid t=<JWT>, k=<public key>` header for this endpoint's
        push service (the JWT's aud is the endpoint's origin, RFC 8292 §2)."""
        parts = urlsplit(endpoint)
        aud = f"{parts.scheme}://{parts.netloc}"
        claims = {"aud": aud, "exp": int(now) + JWT_LIFETIME_SECONDS, "sub": subject}
        header: str = self._vapid.sign(claims)["Authorization"]
        return header


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """The aes128gcm body of RFC 8291: salt, record size, the ephemeral public key as keyid,
    one record. The ephemeral key is new for every message (§3.1)."""
    receiver = unb64url(p256dh)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        private_key=ephemeral,
        dh=receiver,
        auth_secret=unb64url(auth),
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


class WebPush:
    name = "webpush"

    def __init__(
        self,
        vapid: VapidKey,
        subject: str,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._vapid = vapid
        self._subject = subject
        # No redirects: a push service answers 201; following a Location elsewhere would
        # send the capability URL's push to a host the subscription never named.
        self._http = httpx.AsyncClient(
            timeout=timeout, verify=verify, transport=transport, follow_redirects=False
        )

    async def send(self, subscription: PushSubscription, payload: bytes, ttl: int) -> PushResult:
        headers = {
            "TTL": str(ttl),
            # RFC 8030 §5.3: normal urgency (the device wakes for it; "high" drains batteries
            # for what is a hint to connect).
            "Urgency": "normal",
            "Authorization": self._vapid.authorization(
                subscription.endpoint, self._subject, time.time()
            ),
        }
        body = b""
        if payload:
            body = encrypt(payload, subscription.p256dh, subscription.auth)
            headers["Content-Encoding"] = "aes128gcm"
            headers["Content-Type"] = "application/octet-stream"
        try:
            response = await self._http.post(subscription.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.info("push to %s failed: %s", subscription.origin, type(exc).__name__)
            return PushResult(PushOutcome.RETRY)
        return classify(response.status_code, response.headers.get("retry-after"))

    async def aclose(self) -> None:
        await self._http.aclose()
