"""Peers' keys from the key directory: verify them, cache them, start sessions from them.

The chain checked is the one docs/protocol.md describes ("Keys"): the account's master key
signs each device's keys, and each device key signs its one-time keys. The first master key
seen for an account is pinned; a later, different one that verifies is a changed identity
(a notice, as Signal shows "safety number changed"), never silently accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from porch.client import retry
from porch.client.core.context import CoreState
from porch.client.errors import IdentityError
from porch.client.events import DevicesChanged, IdentityChanged
from porch.client.store import PeerDeviceRow
from porch.crypto.errors import SignatureError
from porch.crypto.olm import OneTimeKey
from porch.crypto.signing import (
    DeviceList,
    verify_device_binding,
    verify_device_list,
    verify_one_time_key,
)
from porch.protocol.codec import b64decode, b64encode


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
    # (list, signature), base64: the account's signed device list, if it published one.
    device_list: tuple[str, str] | None = None


def device_rows(bundle: Bundle) -> list[PeerDeviceRow]:
    return [
        PeerDeviceRow(bundle.account_id, d.device_id, d.registration_id, d.curve25519, d.ed25519)
        for d in bundle.devices
    ]


def verify_bundle(state: CoreState, bundle: Bundle, check_one_time_keys: bool) -> Bundle:
    """Check master key -> device keys -> one-time key; pin the master key on first use.

    Returns the bundle with only the devices its signed device list names (spec C), when it
    has one: the server cannot add a device the account's master key did not list."""
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
    listed = check_device_list(state, bundle, same_identity=pinned in (None, bundle.master_key))
    state.store.set_contact(bundle.account_id, master_key=bundle.master_key)
    if listed is None:
        return bundle
    state.store.set_contact_device_list(bundle.account_id, (listed.version, listed.device_ids))
    keys = {(d.device_id, d.registration_id, d.ed25519) for d in listed.devices}
    devices = [
        d
        for d in bundle.devices
        if (d.device_id, d.registration_id, b64encode(b64decode(d.ed25519))) in keys
    ]
    return replace(bundle, devices=devices)


def check_device_list(state: CoreState, bundle: Bundle, same_identity: bool) -> DeviceList | None:
    """Verify the bundle's device list with its master key; refuse a lower version than the
    one last accepted (a replayed old list would hide a linked device or revive a removed
    one), and tell the user when the list changed. None when the account has no list."""
    account = bundle.account_id
    # A changed master key (re-registration) starts the account's lists afresh.
    before = state.store.contact_device_list(account) if same_identity else None
    if bundle.device_list is None:
        if before is not None:
            raise IdentityError(
                f"the key directory no longer shows the device list of {account[:8]}; "
                "not trusting its devices"
            )
        return None
    payload_b64, signature = bundle.device_list
    try:
        listed = verify_device_list(bundle.master_key, b64decode(payload_b64), signature)
    except (SignatureError, ValueError):
        raise IdentityError(
            f"the device list of {account[:8]} is not signed by its master key"
        ) from None
    if listed.account_id != account:
        raise IdentityError(
            f"the key directory gave another account's device list for {account[:8]}"
        )
    if before is not None:
        version, ids = before
        if listed.version < version:
            raise IdentityError(
                f"the key directory gave an older device list of {account[:8]} "
                f"(version {listed.version}, after {version}); not trusting it"
            )
        if listed.version > version and listed.device_ids != ids:
            added = tuple(sorted(listed.device_ids - ids))
            removed = tuple(sorted(ids - listed.device_ids))
            if account != state.account_id:
                now = state.clock()
                notice = retry.devices_notice(state.label(account), len(added), len(removed))
                client_id = f"{retry.DEVICES_NOTICE_PREFIX}{listed.version}"
                state.store.add_message(account, client_id, False, 0, now, notice, retry.NOTICE)
            state.emit(DevicesChanged(account, added, removed))
    return listed


def cache_directory(state: CoreState, bundle: Bundle, replace: bool) -> None:
    """Verify a fetched (unclaimed) bundle and cache its devices; with replace, devices it no
    longer lists are dropped. Sessions with a device whose keys changed are void."""
    bundle = verify_bundle(state, bundle, check_one_time_keys=False)
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
    bundle = verify_bundle(state, bundle, check_one_time_keys=True)
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
