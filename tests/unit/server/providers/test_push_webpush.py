"""The Web Push adapter against a real HTTPS push service on loopback: the body it sends is
decrypted with the subscription's keys (RFC 8291), its VAPID token checked (RFC 8292), and
the service's answers mapped to outcomes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from porch.server.providers.push import WAKE_PAYLOAD, PushOutcome, PushSubscription
from porch.server.providers.push_webpush import VapidKey, WebPush, b64url
from tests.integration.push_service import Browser, PushService, check_vapid

SUBJECT = "mailto:ops@example.org"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[PushService]:
    with PushService(tmp_path) as ps:
        yield ps


@contextlib.asynccontextmanager
async def pusher(service: PushService) -> AsyncIterator[WebPush]:
    push = WebPush(VapidKey(VapidKey.generate_raw()), SUBJECT, verify=service.client_context())
    try:
        yield push
    finally:
        await push.aclose()


def subscription(endpoint: str, browser: Browser) -> PushSubscription:
    keys = browser.keys()
    return PushSubscription("acc", 2, "webpush", endpoint, keys["p256dh"], keys["auth"], 0)


async def test_the_push_decrypts_with_the_subscription_keys(service: PushService) -> None:
    browser, vapid = Browser(), VapidKey(VapidKey.generate_raw())
    push = WebPush(vapid, SUBJECT, verify=service.client_context())
    try:
        result = await push.send(subscription(service.endpoint("a"), browser), WAKE_PAYLOAD, 60)
    finally:
        await push.aclose()
    assert result.outcome is PushOutcome.DELIVERED and result.status == 201
    (request,) = service.requests
    assert request.method == "POST" and request.path == "/push/a"
    assert request.headers["ttl"] == "60"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["urgency"] == "normal"
    assert browser.decrypt(request.body) == b'{"t":"wake"}'
    token = check_vapid(request.headers["authorization"], service.origin, time.time())
    assert token["claims"]["sub"] == SUBJECT
    assert token["key"] == vapid.public_key


async def test_each_push_has_a_fresh_ephemeral_key(service: PushService) -> None:
    browser = Browser()
    async with pusher(service) as push:
        for _ in range(2):
            await push.send(subscription(service.endpoint(), browser), WAKE_PAYLOAD, 0)
    first, second = (r.body for r in service.requests)
    assert first[21:86] != second[21:86]  # as_public, the keyid (RFC 8291 §3.1)
    assert first[:16] != second[:16]  # salt
    assert browser.decrypt(first) == browser.decrypt(second) == WAKE_PAYLOAD


async def test_another_browser_cannot_decrypt(service: PushService) -> None:
    async with pusher(service) as push:
        await push.send(subscription(service.endpoint(), Browser()), WAKE_PAYLOAD, 0)
    with pytest.raises(InvalidTag):
        Browser().decrypt(service.requests[0].body)


async def test_an_empty_payload_goes_without_a_body(service: PushService) -> None:
    async with pusher(service) as push:
        await push.send(subscription(service.endpoint(), Browser()), b"", 30)
    (request,) = service.requests
    assert request.body == b"" and "content-encoding" not in request.headers


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, PushOutcome.DELIVERED),
        (404, PushOutcome.GONE),
        (410, PushOutcome.GONE),
        (429, PushOutcome.RETRY),
        (503, PushOutcome.RETRY),
        (400, PushOutcome.FAILED),
        (413, PushOutcome.FAILED),
    ],
)
async def test_answers_map_to_outcomes(
    service: PushService, status: int, outcome: PushOutcome
) -> None:
    service.statuses.append(status)
    async with pusher(service) as push:
        result = await push.send(subscription(service.endpoint(), Browser()), WAKE_PAYLOAD, 0)
    assert result.outcome is outcome and result.status == status
    assert result.retry_after == (1.0 if status == 429 else None)


async def test_an_unreachable_or_untrusted_service_is_retried(service: PushService) -> None:
    # The default trust store does not know the test certificate: TLS fails, nothing is sent.
    push = WebPush(VapidKey(VapidKey.generate_raw()), SUBJECT)
    try:
        result = await push.send(subscription(service.endpoint(), Browser()), WAKE_PAYLOAD, 0)
    finally:
        await push.aclose()
    assert result.outcome is PushOutcome.RETRY and result.status is None
    assert service.requests == []


def test_vapid_key_round_trips_through_its_text_form() -> None:
    raw = VapidKey.generate_raw()
    assert VapidKey.from_text(b64url(raw)).public_key == VapidKey(raw).public_key
    assert len(VapidKey(raw).public_key) == 87  # 65 bytes, base64url unpadded
    with pytest.raises(ValueError, match="32 bytes"):
        VapidKey.from_text("c2hvcnQ")
