"""The key directory: device identity keys, one-time keys and fallback keys.

The server checks every signature it is handed (master key -> device keys -> one-time key,
docs/protocol.md "Keys and signatures") so a buggy or malicious client cannot publish keys
that other clients would then refuse; clients still verify the chain themselves, since the
server is not trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from porch.crypto.errors import SignatureError
from porch.crypto.signing import verify_device_binding, verify_one_time_key
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.frames import keys_low
from porch.server.bus.base import Bus, DeviceEvent
from porch.server.ratelimit import Limit, RateLimiter
from porch.server.services.accounts import Principal
from porch.server.store.base import ClaimedDevice, Device, IdentityKeyTaken, PreKey, Store

MAX_ONE_TIME_KEYS_PER_UPLOAD = 200
MAX_STORED_ONE_TIME_KEYS = 500


@dataclass(frozen=True, slots=True)
class IdentityUpload:
    master_key: str
    curve25519: str
    ed25519: str
    signature: str


@dataclass(frozen=True, slots=True)
class KeyBundle:
    account_id: str
    master_key: str
    devices: list[ClaimedDevice]


class KeyService:
    def __init__(
        self, store: Store, bus: Bus, limiter: RateLimiter, claims: Limit, low_water: int
    ) -> None:
        self._store = store
        self._bus = bus
        self._limiter = limiter
        self._claims = claims
        self._low_water = low_water

    async def upload(
        self,
        principal: Principal,
        identity: IdentityUpload | None,
        one_time_keys: Sequence[PreKey],
    ) -> int:
        account = await self._store.get_account(principal.account_id)
        devices = {d.device_id: d for d in await self._store.list_devices(principal.account_id)}
        me = devices.get(principal.device_id)
        if account is None or me is None:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "this device no longer exists")
        if len(one_time_keys) > MAX_ONE_TIME_KEYS_PER_UPLOAD:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"at most {MAX_ONE_TIME_KEYS_PER_UPLOAD} one-time keys per upload",
            )
        # Every check comes before any write, so a refused upload changes nothing.
        ed25519 = me.ed25519 if identity is None else identity.ed25519
        if ed25519 is None:
            raise ProtocolError(
                ErrorCode.NO_KEYS, "upload this device's identity keys before one-time keys"
            )
        for key in one_time_keys:
            try:
                verify_one_time_key(
                    ed25519, key.key_id, key.curve25519, key.fallback, key.signature
                )
            except SignatureError:
                raise ProtocolError(
                    ErrorCode.BAD_SIGNATURE,
                    f"one-time key {key.key_id[:32]!r} is not signed by this device",
                ) from None
        count = await self._store.count_one_time_keys(principal.account_id, principal.device_id)
        fresh = [k for k in one_time_keys if not k.fallback]
        if count + len(fresh) > MAX_STORED_ONE_TIME_KEYS:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"a device keeps at most {MAX_STORED_ONE_TIME_KEYS} one-time keys on the server",
            )
        if identity is not None:
            await self._set_identity(principal, account.master_key, me, devices, identity)
        return await self._store.add_one_time_keys(
            principal.account_id, principal.device_id, one_time_keys
        )

    async def _set_identity(
        self,
        principal: Principal,
        current_master: str | None,
        me: Device,
        devices: dict[int, Device],
        identity: IdentityUpload,
    ) -> str:
        if me.has_keys:
            if (me.curve25519, me.ed25519) == (identity.curve25519, identity.ed25519):
                return identity.ed25519  # an idempotent retry of the same upload
            raise ProtocolError(
                ErrorCode.KEYS_EXIST,
                "this device already has identity keys; register again to replace them",
            )
        others_keyed = any(d.has_keys for i, d in devices.items() if i != principal.device_id)
        if current_master not in (None, identity.master_key) and others_keyed:
            raise ProtocolError(
                ErrorCode.MASTER_KEY_MISMATCH,
                "the account has another master key; link this device from an existing one",
            )
        try:
            verify_device_binding(
                identity.master_key,
                principal.account_id,
                principal.device_id,
                me.registration_id,
                identity.curve25519,
                identity.ed25519,
                identity.signature,
            )
        except SignatureError:
            raise ProtocolError(
                ErrorCode.BAD_SIGNATURE,
                "the device keys are not signed by the master key for this account and device",
            ) from None
        try:
            # The store's unique indexes decide, so two concurrent uploads cannot both win.
            await self._store.set_identity(
                principal.account_id,
                principal.device_id,
                identity.master_key,
                identity.curve25519,
                identity.ed25519,
                identity.signature,
            )
        except IdentityKeyTaken:
            # A clone: public keys copied from another device and signed by the uploader's
            # own master key would let the uploader pose as that device. Whose device it is
            # stays unsaid (docs/security.md, "Identity keys").
            raise ProtocolError(
                ErrorCode.IDENTITY_KEY_IN_USE,
                "these identity keys belong to another device; generate this device's own",
            ) from None
        await self._bus.account_changed(principal.account_id)
        return identity.ed25519

    async def count(self, principal: Principal) -> int:
        return await self._store.count_one_time_keys(principal.account_id, principal.device_id)

    async def bundle(
        self,
        requester: Principal,
        account_id: str,
        claim: bool,
        device_ids: Sequence[int] | None,
    ) -> KeyBundle:
        """The account's keyed devices; with claim, each with one one-time key taken for good."""
        if claim:
            await self._limiter.hit("key-claims", requester.account_id, self._claims)
        account = await self._store.get_account(account_id)
        if account is None or account.master_key is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no account with keys has this id")
        if claim:
            devices = await self._store.claim_keys(account_id, device_ids)
            await self._warn_if_low(account_id, devices)
        else:
            listed = await self._store.list_devices(account_id)
            wanted = None if device_ids is None else set(device_ids)
            devices = [
                ClaimedDevice(d, None)
                for d in listed
                if d.has_keys and (wanted is None or d.device_id in wanted)
            ]
        return KeyBundle(account_id, account.master_key, devices)

    async def _warn_if_low(self, account_id: str, devices: list[ClaimedDevice]) -> None:
        """Tell each connected device whose one-time keys run low, so it uploads more."""
        for claimed in devices:
            if claimed.one_time_key is None:
                continue
            device_id = claimed.device.device_id
            left = await self._store.count_one_time_keys(account_id, device_id)
            if left < self._low_water:
                await self._bus.publish(account_id, device_id, DeviceEvent(frame=keys_low(left)))
