"""Linking another device to an account, and the account's signed device list (spec C).

The new device (:func:`link`) opens a provisioning channel, shows the ``porch://link`` URI
(text and QR code), waits for the primary's encrypted ProvisionMessage, links itself with the
code in it, makes its own keys, signs its device binding with the account's master key and
publishes the next signed device list, itself included. The primary device
(:func:`approve_link`, from ``Client.link_device``) only fetches a provisioning code and puts
the message into the channel: the new device publishes the list. Removing a device publishes
a list without it (:func:`remove_device`); a device leaves by itself with
:func:`leave_device`. docs/protocol.md, section 7, "Linking a device".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from porch.client.api import Credentials, HttpApi
from porch.client.core.keys import Bundle
from porch.client.core.state import ONE_TIME_KEYS_TARGET
from porch.client.errors import ClientCode, IdentityError, ProfileError, Timeout, UsageError
from porch.client.ownership import ProfileLock
from porch.client.profile import ProfileConfig, ensure_private_dir
from porch.client.profile import open_store as _open_store
from porch.client.store import LocalStore
from porch.client.transport import NetworkTransport, Transport
from porch.crypto.errors import CryptoError, ProvisioningError, SignatureError
from porch.crypto.olm import OlmMachine
from porch.crypto.provisioning import ProvisioningKeyPair, ProvisionMessage, encrypt_provision
from porch.crypto.provisioning_uri import (
    ProvisioningUri,
    build_provisioning_uri,
    parse_provisioning_uri,
)
from porch.crypto.signing import (
    ListedDevice,
    MasterKey,
    device_list_payload,
    verify_device_binding,
    verify_device_list,
)
from porch.protocol.codec import b64decode, b64encode

LINK_TIMEOUT = 600.0  # the server keeps a channel ten minutes
POLL_WAIT = 10  # seconds per long poll: under the HTTP client's 15 s timeout


def parse_link_uri(text: str) -> ProvisioningUri:
    """The URI another device shows; UsageError with a sentence if it is not one."""
    try:
        return parse_provisioning_uri(text.strip())
    except ProvisioningError as exc:
        raise UsageError(
            f"that is not a device-linking URI ({exc}); copy the whole porch://link?... text "
            "the new device shows"
        ) from None


# The device list ------------------------------------------------------------------------


def listed_devices(bundle: Bundle, master_public: str) -> tuple[int, list[ListedDevice]]:
    """(version, devices) of the account's current list, checked against its master key; for an
    account without one, (0, every device whose binding verifies)."""
    if bundle.device_list is not None:
        payload, signature = bundle.device_list
        try:
            current = verify_device_list(master_public, b64decode(payload), signature)
        except (SignatureError, ValueError):
            raise IdentityError(
                "the server's device list for this account does not verify"
            ) from None
        if current.account_id != bundle.account_id:
            raise IdentityError("the server gave another account's device list")
        return current.version, list(current.devices)
    devices = []
    for d in bundle.devices:
        try:
            verify_device_binding(
                master_public,
                bundle.account_id,
                d.device_id,
                d.registration_id,
                d.curve25519,
                d.ed25519,
                d.signature,
            )
        except SignatureError:
            continue
        devices.append(ListedDevice(d.device_id, d.registration_id, d.ed25519))
    return 0, devices


async def publish_device_list(
    api: HttpApi,
    master: MasterKey,
    account_id: str,
    *,
    add: ListedDevice | None = None,
    remove: int | None = None,
) -> int:
    """Publish the next version of the account's signed list, with ``add`` and without
    ``remove``; returns the version."""
    version, payload = await _next_list(api, master, account_id, add=add, remove=remove)
    await api.put_device_list(b64encode(payload), master.sign(payload))
    return version


async def _next_list(
    api: HttpApi,
    master: MasterKey,
    account_id: str,
    *,
    add: ListedDevice | None = None,
    remove: int | None = None,
) -> tuple[int, bytes]:
    """(version, payload) of the account's next list, with ``add`` and without ``remove``.
    Only devices the server still has keys for stay listed."""
    bundle = await api.get_keys(account_id)
    version, devices = listed_devices(bundle, master.public_b64)
    keyed = {d.device_id for d in bundle.devices}
    kept = [d for d in devices if d.device_id in keyed and d.device_id != remove]
    if add is not None:
        kept = [d for d in kept if d.device_id != add.device_id] + [add]
    return version + 1, device_list_payload(account_id, version + 1, kept)


# The new device ----------------------------------------------------------------------------

MAX_LINK_NAME = 64  # POST /v1/devices/link refuses a longer name (docs/protocol.md)


async def link(
    server: str,
    profile_dir: Path,
    *,
    name: str = "",
    show_uri: Callable[[str], None],
    transport: Transport | None = None,
    timeout: float = LINK_TIMEOUT,
) -> ProfileConfig:
    """Make profile_dir a new device of an existing account, approved from one of its devices.

    ``show_uri`` is called once with the URI to scan or paste on that device. Timeout after
    ``timeout`` seconds without an answer; cancelling (Ctrl-C) leaves no profile behind."""
    if len(name.strip()) > MAX_LINK_NAME:
        # Checked first: the server refuses it only at the last step, after the approval.
        raise UsageError(
            f"a device name is at most {MAX_LINK_NAME} characters; choose a shorter --name"
        )
    lock = ProfileLock(profile_dir)
    with contextlib.suppress(OSError):
        if Path(profile_dir).is_dir() and not lock.try_acquire():
            raise ProfileError(
                f"the profile {profile_dir} is in use by another porch process; close it first",
                code=ClientCode.PROFILE_LOCKED,
            )
    try:
        return await _link(server, profile_dir, name, show_uri, transport, timeout)
    finally:
        lock.release()


async def _link(
    server: str,
    profile_dir: Path,
    name: str,
    show_uri: Callable[[str], None],
    transport: Transport | None,
    timeout: float,
) -> ProfileConfig:
    transport = transport or NetworkTransport()
    keypair = ProvisioningKeyPair.generate()
    api = HttpApi(server, transport=transport.http_transport())
    try:
        channel = await api.open_channel()
        show_uri(build_provisioning_uri(channel, keypair.public_bytes, name or None))
        body = await _wait(api, channel, timeout)
        try:
            message = keypair.decrypt(b64decode(body))
        except (CryptoError, ValueError) as exc:
            raise IdentityError(f"the linking message could not be read: {exc}") from None
        reg = await api.link(message.provisioning_code, name)
    finally:
        await api.aclose()
    if reg.account_id != message.account_id:
        raise IdentityError("the server linked this device to another account than offered")
    return await _make_profile(
        server, profile_dir, transport, message, reg.device_id, reg.registration_id, reg.password
    )


async def _wait(api: HttpApi, channel: str, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise Timeout(
                f"no device approved the link within {int(timeout // 60)} minutes; run "
                "`porch link` again and, on a device of the account, `porch devices link URI`"
            )
        body = await api.wait_channel(channel, max(0, min(POLL_WAIT, int(left))))
        if body is not None:
            return body


async def _make_profile(
    server: str,
    profile_dir: Path,
    transport: Transport,
    message: ProvisionMessage,
    device_id: int,
    registration_id: int,
    password: str,
) -> ProfileConfig:
    ensure_private_dir(profile_dir)
    for stale in profile_dir.glob("client.db*"):
        stale.unlink()  # a new device is a new identity: old sessions are void
    (profile_dir / "profile.json").unlink(missing_ok=True)
    account_id = message.account_id
    store, sealer = _open_store(profile_dir)
    try:
        machine = OlmMachine.create(sealer.subkey("olm-pickle"))
        master = MasterKey.from_private_bytes(message.master_seed)
        with store.transaction():
            store.put_secret("password", password.encode())
            store.put_secret("master_key", master.private_bytes())
            store.put_pickle("olm_account", machine.pickle_account())
        signature = master.sign_device(
            account_id, device_id, registration_id, machine.curve25519, machine.ed25519
        )
        api = HttpApi(
            server, Credentials(account_id, device_id, password), transport.http_transport()
        )
        try:
            await api.upload_keys(
                identity={
                    "master_key": master.public_b64,
                    "curve25519": machine.curve25519,
                    "ed25519": machine.ed25519,
                    "signature": signature,
                },
                one_time_keys=machine.generate_one_time_keys(ONE_TIME_KEYS_TARGET),
                fallback_key=machine.generate_fallback_key(),
            )
            store.put_pickle("olm_account", machine.pickle_account())
            me = ListedDevice(device_id, registration_id, machine.ed25519)
            await publish_device_list(api, master, account_id, add=me)
        finally:
            await api.aclose()
    finally:
        store.close()
    config = ProfileConfig(
        server=server,
        account_id=account_id,
        device_id=device_id,
        registration_id=registration_id,
        phone=message.phone,
        username=message.username,
    )
    config.save(profile_dir)  # last: a profile.json means a complete device
    return config


# The primary device -------------------------------------------------------------------------


def _master(store: LocalStore) -> MasterKey:
    seed = store.get_secret("master_key")
    if seed is None:
        raise ProfileError("this profile has no master key; register again")
    return MasterKey.from_private_bytes(seed)


async def approve_link(
    api: HttpApi, store: LocalStore, config: ProfileConfig, uri: ProvisioningUri
) -> None:
    """Give the device that showed ``uri`` this account's keys (Client.link_device)."""
    code = await api.provisioning_code()
    message = ProvisionMessage(
        account_id=config.account_id,
        master_seed=_master(store).private_bytes(),
        phone=config.phone,
        username=config.username,
        provisioning_code=code,
        primary_device_id=config.device_id,
    )
    await api.fill_channel(uri.channel_id, b64encode(encrypt_provision(message, uri.public_key)))


async def remove_device(
    api: HttpApi, store: LocalStore, config: ProfileConfig, device_id: int
) -> None:
    """Revoke a device (its credential and connection end at once), then publish the list
    without it (Client.remove_device)."""
    if device_id == config.device_id:
        raise UsageError("this device cannot remove itself; remove it from another device")
    await api.delete_device(device_id)
    await publish_device_list(api, _master(store), config.account_id, remove=device_id)


ONLY_DEVICE = (
    "this is your account's only device, so it cannot leave the account: link another device "
    "first (`porch link` there), or delete this profile to stop using the account here"
)


async def leave_device(api: HttpApi, store: LocalStore, config: ProfileConfig) -> None:
    """This device removes itself (`POST /v1/devices/leave`, Client.leave): the account's
    next signed list without it goes in the same request, so the list never names a removed
    device. The server refuses (403 forbidden) for an account's only device."""
    master = _master(store)
    bundle = await api.get_keys(config.account_id)
    if not any(d.device_id != config.device_id for d in bundle.devices):
        raise UsageError(ONLY_DEVICE)  # no list can be empty; the server would say 403
    _version, payload = await _next_list(api, master, config.account_id, remove=config.device_id)
    await api.leave(b64encode(payload), master.sign(payload))
