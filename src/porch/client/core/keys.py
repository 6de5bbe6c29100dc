"""Peers' keys from the key directory: verify them, cache them, start sessions from them.

The chain checked is the one docs/protocol.md describes ("Keys"): the account's master key
signs each device's keys, and each device key signs its one-time keys. The first master key
seen for an account is pinned; a later, different one that verifies is a changed identity
(a notice, as Signal shows "safety number changed"), never silently accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from porch.client import retry
from porch.client.core.context import CoreState
from porch.client.errors import IdentityError
from porch.client.events import IdentityChanged
from porch.client.store import PeerDeviceRow
from porch.crypto.errors import SignatureError
from porch.crypto.olm import OneTimeKey
from porch.crypto.signing import verify_device_binding, verify_one_time_key


@dataclass(frozen=True, slots=True)
class DirectoryDevice:
    device_id: int
    registration_id: int
    curve25519: str
    ed25519: str
    signature: str
    one_time_key: OneTimeKey | None


@dataclass(frozen=True, slots=True)
class Bundle:
    account_id: str
    master_key: str
    devices: list[DirectoryDevice]


def device_rows(bundle: Bundle) -> list[PeerDeviceRow]:
    return [
        PeerDeviceRow(bundle.account_id, d.device_id, d.registration_id, d.curve25519, d.ed25519)
        for d in bundle.devices
    ]


def verify_bundle(state: CoreState, bundle: Bundle, check_one_time_keys: bool) -> None:
    """Check master key -> device keys -> one-time key; pin the master key on first use."""
    pinned = state.store.contact_master_key(bundle.account_id)
    try:
        for d in bundle.devices:
            verify_device_binding(
                bundle.master_key,
                bundle.account_id,
                d.device_id,
                d.registration_id,
                d.curve25519,
                d.ed25519,
                d.signature,
            )
            if check_one_time_keys and d.one_time_key is not None:
                k = d.one_time_key
                verify_one_time_key(d.ed25519, k.key_id, k.curve25519, k.fallback, k.signature)
    except (SignatureError, ValueError) as exc:
        raise IdentityError(
            f"the key directory returned keys for {bundle.account_id[:8]} that do not verify: {exc}"
        ) from None
    if pinned is not None and pinned != bundle.master_key:
        # As Signal does by default: warn (the safety number changed; the conversation shows it
        # too), then carry on. Only keys that verified count as a change.
        now = state.clock()
        notice = retry.identity_notice(state.label(bundle.account_id))
        state.store.add_message(
            bundle.account_id, f"identity-{now}", False, 0, now, notice, retry.NOTICE
        )
        state.emit(IdentityChanged(bundle.account_id))
    state.store.set_contact(bundle.account_id, master_key=bundle.master_key)


def cache_directory(state: CoreState, bundle: Bundle, replace: bool) -> None:
    """Verify a fetched (unclaimed) bundle and cache its devices; with replace, devices it no
    longer lists are dropped. Sessions with a device whose keys changed are void."""
    verify_bundle(state, bundle, check_one_time_keys=False)
    cached = {d.device_id: d for d in state.store.peer_devices(bundle.account_id)}
    rows = device_rows(bundle)
    for row in rows:
        old = cached.get(row.device_id)
        if old is not None and old.curve25519 != row.curve25519:
            state.olm.forget_peer((bundle.account_id, row.device_id))
    state.save_olm()
    state.store.put_peer_devices(bundle.account_id, rows, replace=replace)


def find_device(state: CoreState, account: str, device_id: int) -> PeerDeviceRow | None:
    for row in state.store.peer_devices(account):
        if row.device_id == device_id:
            return row
    return None


def start_sessions(state: CoreState, bundle: Bundle) -> list[int]:
    """Start an outbound session with each device of a claimed bundle (not our own)."""
    verify_bundle(state, bundle, check_one_time_keys=True)
    started = []
    for d in bundle.devices:
        if state.is_me(bundle.account_id, d.device_id):
            continue
        if d.one_time_key is None:
            raise IdentityError(f"device {d.device_id} of {bundle.account_id[:8]} has no keys left")
        state.olm.create_outbound_session(
            (bundle.account_id, d.device_id), d.curve25519, d.one_time_key.curve25519
        )
        started.append(d.device_id)
    state.store.put_peer_devices(bundle.account_id, device_rows(bundle), replace=False)
    state.save_olm()
    return started
