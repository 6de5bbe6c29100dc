"""The push store's contract, on SQLite and on PostgreSQL (the fixtures of test_contract):
one subscription per device, replaced in place, gone with its device or a re-registration."""

# ruff: noqa: F811 (the fixtures imported from test_contract are parameters here)

from __future__ import annotations

import dataclasses
import uuid

from porch.server.providers.push import PushSubscription
from porch.server.store.base import Store
from tests.unit.server.store.helpers import NOW, PHONE_A, PHONE_B, register
from tests.unit.server.store.test_contract import make, store  # noqa: F401 (fixtures)


def sub(account: str, endpoint: str = "https://push.example/a") -> PushSubscription:
    return PushSubscription(account, 1, "webpush", endpoint, "p" * 87, "a" * 22, NOW)


async def test_put_replaces_and_delete_is_per_endpoint(store: Store) -> None:
    a, b = await register(store, PHONE_A), await register(store, PHONE_B)
    await store.put_push_subscription(sub(a))
    await store.put_push_subscription(sub(b, "https://push.example/b"))
    renewed = dataclasses.replace(sub(a, "https://push.example/a2"), created=NOW + 1)
    await store.put_push_subscription(renewed)
    assert await store.get_push_subscription(a, 1) == renewed
    assert await store.get_push_subscription(a, 2) is None
    # A gone answer for the old endpoint leaves the renewal.
    assert not await store.delete_push_subscription(a, 1, "https://push.example/a")
    assert await store.delete_push_subscription(a, 1, "https://push.example/a2")
    assert await store.get_push_subscription(a, 1) is None
    assert await store.delete_push_subscription(b, 1)
    assert not await store.delete_push_subscription(b, 1)


async def test_device_deletion_and_reregistration_delete_it(store: Store) -> None:
    a, b = await register(store, PHONE_A), await register(store, PHONE_B)
    await store.put_push_subscription(sub(a))
    await store.put_push_subscription(sub(b))
    await store.delete_device(a, 1)
    assert await store.get_push_subscription(a, 1) is None
    # The new device 1 of a re-registered number must not wake the old browser.
    again, device, replaced = await store.register(
        PHONE_B, b"h" * 32, 43, "new", NOW + 1, str(uuid.uuid4())
    )
    assert (again, device, replaced) == (b, 1, True)
    assert await store.get_push_subscription(b, 1) is None
