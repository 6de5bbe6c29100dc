"""The key directory over HTTP (docs/protocol.md, "Keys and signatures")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from porch.protocol.codec import b64encode
from porch.protocol.frames import ACCOUNT_ID_PATTERN, DeviceId
from porch.server.api.deps import PrincipalDep, ServicesDep
from porch.server.services.keys import IdentityUpload, KeyBundle
from porch.server.store.base import PreKey, StoredDeviceList

router = APIRouter(prefix="/v1/keys", tags=["keys"])

B64Key = Annotated[str, Field(min_length=43, max_length=44, pattern=r"^[A-Za-z0-9+/]+=?$")]
B64Sig = Annotated[str, Field(min_length=86, max_length=88, pattern=r"^[A-Za-z0-9+/]+={0,2}$")]
AccountIdPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityIn(_Body):
    master_key: B64Key
    curve25519: B64Key
    ed25519: B64Key
    signature: B64Sig


class OneTimeKeyIn(_Body):
    key_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+/=_-]+$")]
    curve25519: B64Key
    signature: B64Sig


class UploadBody(_Body):
    identity: IdentityIn | None = None
    one_time_keys: Annotated[list[OneTimeKeyIn], Field(max_length=200)] = []
    fallback_key: OneTimeKeyIn | None = None


class KeyCount(BaseModel):
    one_time_keys: int


class ClaimBody(_Body):
    devices: Annotated[list[DeviceId], Field(max_length=64)] | None = None


class OneTimeKeyOut(BaseModel):
    key_id: str
    curve25519: str
    signature: str
    fallback: bool


class DeviceKeysOut(BaseModel):
    device_id: int
    registration_id: int
    curve25519: str
    ed25519: str
    signature: str
    one_time_key: OneTimeKeyOut | None = None


class DeviceListOut(BaseModel):
    list: str  # base64 of the signed bytes (docs/protocol.md section 7, "Device list")
    signature: str


class BundleOut(BaseModel):
    account_id: str
    master_key: str
    devices: list[DeviceKeysOut]
    # The account's signed device list; null until it publishes one (spec C).
    device_list: DeviceListOut | None = None


def _bundle(bundle: KeyBundle, device_list: StoredDeviceList | None) -> BundleOut:
    devices = []
    for claimed in bundle.devices:
        d, k = claimed.device, claimed.one_time_key
        assert d.curve25519 and d.ed25519 and d.signature
        devices.append(
            DeviceKeysOut(
                device_id=d.device_id,
                registration_id=d.registration_id,
                curve25519=d.curve25519,
                ed25519=d.ed25519,
                signature=d.signature,
                one_time_key=None
                if k is None
                else OneTimeKeyOut(
                    key_id=k.key_id,
                    curve25519=k.curve25519,
                    signature=k.signature,
                    fallback=k.fallback,
                ),
            )
        )
    listed = None
    if device_list is not None:
        listed = DeviceListOut(
            list=b64encode(device_list.payload), signature=b64encode(device_list.signature)
        )
    return BundleOut(
        account_id=bundle.account_id,
        master_key=bundle.master_key,
        devices=devices,
        device_list=listed,
    )


@router.put("", response_model=KeyCount)
async def upload(body: UploadBody, who: PrincipalDep, svc: ServicesDep) -> KeyCount:
    """Publish this device's identity keys (once), one-time keys and its fallback key."""
    identity = None
    if body.identity is not None:
        i = body.identity
        identity = IdentityUpload(i.master_key, i.curve25519, i.ed25519, i.signature)
    keys = [PreKey(k.key_id, k.curve25519, k.signature, False) for k in body.one_time_keys]
    if body.fallback_key is not None:
        fb = body.fallback_key
        keys.append(PreKey(fb.key_id, fb.curve25519, fb.signature, True))
    count = await svc.keys.upload(who, identity, keys)
    return KeyCount(one_time_keys=count)


@router.get("/count", response_model=KeyCount)
async def count(who: PrincipalDep, svc: ServicesDep) -> KeyCount:
    return KeyCount(one_time_keys=await svc.keys.count(who))


@router.get("/{account_id}", response_model=BundleOut)
async def identity(account_id: AccountIdPath, who: PrincipalDep, svc: ServicesDep) -> BundleOut:
    """An account's master key and device identity keys, without taking any one-time key."""
    bundle = await svc.keys.bundle(who, account_id, claim=False, device_ids=None)
    return _bundle(bundle, await svc.devices.device_list(account_id))


@router.post("/{account_id}/claim", response_model=BundleOut)
async def claim(
    account_id: AccountIdPath, body: ClaimBody, who: PrincipalDep, svc: ServicesDep
) -> BundleOut:
    """Take one one-time key per device (the fallback key once none is left)."""
    bundle = await svc.keys.bundle(who, account_id, claim=True, device_ids=body.devices)
    return _bundle(bundle, await svc.devices.device_list(account_id))
