"""KeyService with a real SQLite store and real keys: identity uploads and clones."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from porch.crypto.olm import OlmMachine
from porch.crypto.signing import MasterKey
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.bus.memory import MemoryBus
from porch.server.ratelimit import Limit, MemoryRateLimiter
from porch.server.services.accounts import Principal
from porch.server.services.keys import IdentityUpload, KeyService
from porch.server.store.sqlite import SqliteStore

NOW = 1_700_000_000_000


class FakeClock:
    def now_ms(self) -> int:
        return NOW

    def monotonic(self) -> float:
        return NOW / 1000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "porch.db") as s:
        yield s


@pytest.fixture
def keys(store: SqliteStore) -> KeyService:
    return KeyService(store, MemoryBus(), MemoryRateLimiter(FakeClock()), Limit(100, 60), 10)


async def _account(store: SqliteStore, phone: str) -> Principal:
    account_id, device_id, _ = await store.register(
        phone, b"h" * 32, 4242, "", NOW, str(uuid.uuid4())
    )
    return Principal(account_id, device_id)


def _identity(master: MasterKey, who: Principal, machine: OlmMachine) -> IdentityUpload:
    signature = master.sign_device(
        who.account_id, who.device_id, 4242, machine.curve25519, machine.ed25519
    )
    return IdentityUpload(master.public_b64, machine.curve25519, machine.ed25519, signature)


async def test_another_accounts_identity_keys_are_refused(
    store: SqliteStore, keys: KeyService
) -> None:
    """Issue 6: the server took a copy of Alice's device keys under Mallory's master key."""
    alice = await _account(store, "+14155550100")
    mallory = await _account(store, "+14155550101")
    device = OlmMachine.create(os.urandom(32))
    await keys.upload(alice, _identity(MasterKey.generate(), alice, device), [])
    # Mallory signs Alice's public device keys with a master key of her own: a valid binding.
    clone = _identity(MasterKey.generate(), mallory, device)
    with pytest.raises(ProtocolError) as info:
        await keys.upload(mallory, clone, [])
    assert info.value.code == ErrorCode.IDENTITY_KEY_IN_USE
    assert alice.account_id not in info.value.message  # whose keys they are stays unsaid
    account = await store.get_account(mallory.account_id)
    assert account is not None and account.master_key is None  # nothing was written
    # Her own keys are fine afterwards.
    own = OlmMachine.create(os.urandom(32))
    await keys.upload(mallory, _identity(MasterKey.generate(), mallory, own), [])


async def test_either_key_alone_is_refused(store: SqliteStore, keys: KeyService) -> None:
    alice = await _account(store, "+14155550100")
    mallory = await _account(store, "+14155550101")
    device = OlmMachine.create(os.urandom(32))
    await keys.upload(alice, _identity(MasterKey.generate(), alice, device), [])
    other = OlmMachine.create(os.urandom(32))
    master = MasterKey.generate()
    for curve, ed in ((device.curve25519, other.ed25519), (other.curve25519, device.ed25519)):
        signature = master.sign_device(mallory.account_id, 1, 4242, curve, ed)
        with pytest.raises(ProtocolError) as info:
            await keys.upload(mallory, IdentityUpload(master.public_b64, curve, ed, signature), [])
        assert info.value.code == ErrorCode.IDENTITY_KEY_IN_USE


async def test_own_keys_may_be_uploaded_again(store: SqliteStore, keys: KeyService) -> None:
    alice = await _account(store, "+14155550100")
    identity = _identity(MasterKey.generate(), alice, OlmMachine.create(os.urandom(32)))
    await keys.upload(alice, identity, [])
    await keys.upload(alice, identity, [])  # an idempotent retry
    devices = await store.list_devices(alice.account_id)
    assert devices[0].curve25519 == identity.curve25519
