"""Values and helpers shared by the store tests."""

from __future__ import annotations

import uuid

from porch.server.store.base import (
    OutgoingCopy,
    OutgoingDestination,
    PreKey,
    Store,
    StoredMessage,
)

NOW = 1_700_000_000_000
DAY = 86_400_000
PHONE_A = "+14155550100"
PHONE_B = "+14155550101"
PHONE_C = "+14155550102"


async def register(store: Store, phone: str, pw: bytes = b"h" * 32) -> str:
    account_id, device_id, _replaced = await store.register(
        phone, pw, 42, "laptop", NOW, str(uuid.uuid4())
    )
    assert device_id == 1
    return account_id


async def with_keys(store: Store, account_id: str, otks: int, fallback: bool) -> None:
    # Keys of their own: an identity key belongs to one device (migration 4).
    await store.set_identity(account_id, 1, "master", f"c-{account_id}", f"e-{account_id}", "sig")
    keys = [PreKey(f"k{i:04d}", f"c{i}", f"s{i}", False) for i in range(otks)]
    if fallback:
        keys.append(PreKey("fb", "cfb", "sfb", True))
    await store.add_one_time_keys(account_id, 1, keys)


async def send(
    store: Store,
    sender: str,
    client_id: str,
    recipient: str,
    devices: tuple[int, ...] = (1,),
    now: int = NOW,
    expires: int = NOW + DAY,
) -> StoredMessage:
    copies = [OutgoingCopy(d, 1, f"body-{client_id}-{d}") for d in devices]
    return await store.store_message(
        sender, 1, client_id, to(recipient, *copies), None, now, expires
    )


def to(account: str, *copies: OutgoingCopy) -> list[OutgoingDestination]:
    """One destination: account with these copies."""
    return [OutgoingDestination(account, copies)]
