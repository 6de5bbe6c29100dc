"""Push providers: one interface for waking a device that is offline (ARCHITECTURE.md,
"Message path", step 3).

A push carries no content: the payload the service hands a provider is `{"t":"wake"}` and
nothing else, so a provider learns only that *some* envelope reached *this* device at *this*
time (docs/security.md, "Push"). The device then connects and reads its queue as usual.

Every provider answers a send with a PushResult, never an exception for what the push service
said: the sender (services/push_sender.py) retries RETRY, deletes the subscription on GONE and
counts FAILED. Adapters:

- WebPush (providers/push_webpush.py): RFC 8030 delivery, RFC 8291 payload encryption
  (aes128gcm, RFC 8188), RFC 8292 VAPID. The subscription is the browser's PushSubscription:
  endpoint URL, p256dh and auth keys.
- FCM and APNs follow the same shape and are not built yet. An FCM adapter would keep the
  registration token in `endpoint`, no keys, and map HTTP v1 answers (UNREGISTERED -> GONE,
  429/503 -> RETRY with Retry-After); an APNs adapter the device token, 410 -> GONE,
  429/5xx -> RETRY, with a token-based (ES256 .p8) provider JWT like VAPID's. Each is a class
  with `name` (the subscription's `provider` column), `send` and `aclose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol
from urllib.parse import urlsplit

# The one payload a push carries (docs/protocol.md, "Push"): nothing about sender or content.
WAKE_PAYLOAD = b'{"t":"wake"}'


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """Where to wake one device (store/push.py); at most one per (account, device)."""

    account_id: str
    device_id: int
    provider: str  # "webpush"; later "fcm", "apns"
    endpoint: str  # the push service URL (webpush) or token (fcm, apns)
    p256dh: str  # base64url P-256 public key of the browser (webpush only)
    auth: str  # base64url 16-byte auth secret (webpush only)
    created: int

    @property
    def origin(self) -> str:
        """What may be logged of an endpoint: its scheme and host. The path is a capability
        (anyone holding it can push to the browser), so it never reaches a log."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.hostname}" if parts.hostname else "(token)"


class PushOutcome(Enum):
    DELIVERED = "delivered"  # the push service accepted it (2xx)
    GONE = "gone"  # the subscription expired or was revoked (404, 410): delete it
    RETRY = "retry"  # transient (429, 5xx, network): try again later
    FAILED = "failed"  # refused for good (other 4xx): counted, not retried


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: PushOutcome
    status: int | None = None  # the HTTP status, when there was an answer
    retry_after: float | None = None  # seconds, from the push service's Retry-After


def classify(status: int, retry_after: str | None) -> PushResult:
    """An HTTP answer of a push service as a PushResult (RFC 8030 §5, §6.2)."""
    if 200 <= status < 300:
        return PushResult(PushOutcome.DELIVERED, status)
    if status in (404, 410):
        return PushResult(PushOutcome.GONE, status)
    if status == 429 or status >= 500:
        wait: float | None = None
        if retry_after is not None and retry_after.strip().isdigit():
            wait = float(retry_after.strip())  # the HTTP-date form is ignored: backoff applies
        return PushResult(PushOutcome.RETRY, status, wait)
    return PushResult(PushOutcome.FAILED, status)


class PushProvider(Protocol):
    name: str

    async def send(self, subscription: PushSubscription, payload: bytes, ttl: int) -> PushResult:
        """Hand one push to the push service; ttl is how long (seconds) it may hold it for a
        device that is unreachable. Network failures are RETRY, not exceptions."""
        ...

    async def aclose(self) -> None: ...
