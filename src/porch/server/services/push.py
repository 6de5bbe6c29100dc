"""Push subscriptions: the rules for storing one, and the server's VAPID key (docs/protocol.md,
"Push").

A device stores at most one subscription; a new one replaces it (browsers renew theirs). The
endpoint is a capability URL at the browser's push service, so it is checked before the
server ever posts to it: https only, bounded, no credentials, and (unless the operator allows
it) no loopback or private IP literal, so a subscription cannot aim the server's requests at
its own network (SSRF). The keys must be what RFC 8291 needs: a P-256 point and a 16-byte
secret.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.clock import Clock
from porch.server.providers.push import PushSubscription
from porch.server.providers.push_webpush import (
    AUTH_SECRET_BYTES,
    P256_POINT_BYTES,
    VapidKey,
    unb64url,
)
from porch.server.services.accounts import Principal
from porch.server.store.push import PushStore

log = logging.getLogger("porch.push")

MAX_ENDPOINT_LENGTH = 2048  # FCM's and Mozilla's are under 400; Apple's under 300
MAX_KEY_LENGTH = 128  # base64url of 65 bytes is 87 characters


def _bad(message: str, field: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, message, field=field)


def check_endpoint(endpoint: str, allow_private: bool) -> None:
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise _bad(f"the endpoint is longer than {MAX_ENDPOINT_LENGTH} characters", "endpoint")
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _bad("the endpoint is not a URL", "endpoint") from None
    if parts.scheme != "https" or not host:
        raise _bad("the endpoint must be an https:// URL", "endpoint")
    if parts.username is not None or parts.password is not None:
        raise _bad("the endpoint must not carry credentials", "endpoint")
    if allow_private:
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise _bad("the endpoint must not point at this server", "endpoint") from None
        # The resolver reads 2130706433, 127.1 or 0x7f.1 as addresses that ip_address does
        # not: a name must end in a label that starts with a letter, as every TLD does.
        if not name.rsplit(".", 1)[-1][:1].isalpha():
            raise _bad("the endpoint's host is not a domain name", "endpoint") from None
        return
    if not address.is_global:
        raise _bad("the endpoint must not point at a private address", "endpoint")


def check_keys(p256dh: str, auth: str) -> None:
    try:
        point = unb64url(p256dh)
        if len(point) != P256_POINT_BYTES:
            raise ValueError("length")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise _bad("p256dh is not a base64url P-256 public key", "p256dh") from None
    try:
        secret = unb64url(auth)
    except ValueError:
        secret = b""
    if len(secret) != AUTH_SECRET_BYTES:
        raise _bad("auth is not a base64url 16-byte secret", "auth")


class PushService:
    def __init__(
        self,
        store: PushStore,
        vapid: Callable[[], Awaitable[VapidKey]],
        clock: Clock,
        allow_private_endpoints: bool,
    ) -> None:
        self._store = store
        self._vapid = vapid
        self._clock = clock
        self._allow_private = allow_private_endpoints

    async def vapid_public_key(self) -> str:
        """The applicationServerKey browsers subscribe with (base64url, 65-byte point)."""
        return (await self._vapid()).public_key

    async def subscribe(self, principal: Principal, endpoint: str, p256dh: str, auth: str) -> None:
        check_endpoint(endpoint, self._allow_private)
        check_keys(p256dh, auth)
        subscription = PushSubscription(
            principal.account_id,
            principal.device_id,
            "webpush",
            endpoint,
            p256dh,
            auth,
            self._clock.now_ms(),
        )
        await self._store.put_push_subscription(subscription)
        log.info("push subscription stored (%s)", subscription.origin)

    async def unsubscribe(self, principal: Principal) -> bool:
        return await self._store.delete_push_subscription(principal.account_id, principal.device_id)


def vapid_loader(
    configured: str | None, stored: Callable[[bytes], Awaitable[bytes]]
) -> Callable[[], Awaitable[VapidKey]]:
    """The VAPID key, loaded once: PORCH_VAPID_PRIVATE_KEY, else the one kept in the database
    (`stored(candidate)` stores the candidate unless a key is there), so every node signs
    with the key browsers subscribed with. Changing it invalidates every subscription."""
    cached: list[VapidKey] = []

    async def load() -> VapidKey:
        if not cached:
            if configured:
                cached.append(VapidKey.from_text(configured))
            else:
                cached.append(VapidKey(await stored(VapidKey.generate_raw())))
        return cached[0]

    return load
