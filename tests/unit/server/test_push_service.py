"""Subscription rules (services/push.py): what an endpoint and keys must be, one per device,
and the VAPID key kept once for every node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.providers.push_webpush import VapidKey, b64url
from porch.server.services.accounts import Principal
from porch.server.services.push import PushService, check_endpoint, check_keys, vapid_loader
from porch.server.settings import Settings
from porch.server.store.sqlite import SqliteStore
from tests.integration.push_service import Browser


class FixedClock:
    def now_ms(self) -> int:
        return 1_700_000_000_000

    def monotonic(self) -> float:
        return 1_700_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "porch.db") as s:
        yield s


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("http://push.example/x", "https://"),
        ("https:///x", "https://"),
        ("ftp://push.example/x", "https://"),
        ("https://user:pw@push.example/x", "credentials"),
        ("https://push.example:99999/x", "not a URL"),
        ("https://push.example/" + "a" * 2048, "longer than 2048"),
        ("https://127.0.0.1/x", "private address"),
        ("https://10.1.2.3/x", "private address"),
        ("https://[::1]/x", "private address"),
        ("https://169.254.169.254/latest", "private address"),
        ("https://localhost/x", "this server"),
        ("https://a.localhost/x", "this server"),
        ("https://localhost./x", "this server"),
        ("https://2130706433/x", "not a domain name"),
        ("https://127.1/x", "not a domain name"),
        ("https://0x7f.1/x", "not a domain name"),
    ],
)
def test_endpoints_refused(endpoint: str, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        check_endpoint(endpoint, allow_private=False)
    assert info.value.code is ErrorCode.BAD_REQUEST and words in info.value.message
    assert info.value.details == {"field": "endpoint"}


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://web.push.apple.com/QGk",
        "https://8.8.8.8:8443/x",
    ],
)
def test_endpoints_accepted(endpoint: str) -> None:
    check_endpoint(endpoint, allow_private=False)


def test_private_endpoints_when_allowed() -> None:
    check_endpoint("https://127.0.0.1:8443/push/x", allow_private=True)
    with pytest.raises(ProtocolError):
        check_endpoint("http://127.0.0.1:8443/push/x", allow_private=True)


def test_keys() -> None:
    keys = Browser().keys()
    check_keys(keys["p256dh"], keys["auth"])
    not_on_curve = b64url(b"\x04" + b"\x01" * 64)
    for p256dh, auth, field in [
        (not_on_curve, keys["auth"], "p256dh"),
        (b64url(b"\x04" * 33), keys["auth"], "p256dh"),
        ("!!!", keys["auth"], "p256dh"),
        (keys["p256dh"], b64url(b"x" * 15), "auth"),
        (keys["p256dh"], "@@", "auth"),
    ]:
        with pytest.raises(ProtocolError) as info:
            check_keys(p256dh, auth)
        assert info.value.details == {"field": field}


async def test_one_subscription_per_device(store: SqliteStore) -> None:
    vapid = vapid_loader(None, lambda c: store.secret("vapid", c))
    push = PushService(store, vapid, FixedClock(), allow_private_endpoints=False)
    who = Principal("acc", 3)
    first, second = Browser().keys(), Browser().keys()
    await push.subscribe(who, "https://push.example/one", first["p256dh"], first["auth"])
    await push.subscribe(who, "https://push.example/two", second["p256dh"], second["auth"])
    stored = await store.get_push_subscription("acc", 3)
    assert stored is not None
    assert (stored.endpoint, stored.p256dh, stored.auth) == (
        "https://push.example/two",
        second["p256dh"],
        second["auth"],
    )
    assert stored.created == 1_700_000_000_000
    with pytest.raises(ProtocolError):
        await push.subscribe(who, "https://127.0.0.1/x", first["p256dh"], first["auth"])
    assert (await store.get_push_subscription("acc", 3)) == stored
    assert await push.unsubscribe(who)
    assert not await push.unsubscribe(who)
    assert await store.get_push_subscription("acc", 3) is None


async def test_the_vapid_key_is_kept_once_for_every_node(store: SqliteStore) -> None:
    node_a = vapid_loader(None, lambda c: store.secret("vapid", c))
    node_b = vapid_loader(None, lambda c: store.secret("vapid", c))
    key = await node_a()
    assert (await node_b()).public_key == key.public_key
    assert await node_a() is key  # loaded once
    raw = VapidKey.generate_raw()
    configured = vapid_loader(b64url(raw), lambda c: store.secret("vapid", c))
    assert (await configured()).public_key == VapidKey(raw).public_key != key.public_key


def test_a_bad_vapid_key_is_refused_at_start() -> None:
    good = b64url(VapidKey.generate_raw())
    assert Settings(vapid_private_key=f" {good}\n").vapid_private_key == good
    for bad in ["c2hvcnQ", "!!!!", b64url(b"x" * 33)]:
        with pytest.raises(ValidationError, match="not a VAPID private key"):
            Settings(vapid_private_key=bad)
