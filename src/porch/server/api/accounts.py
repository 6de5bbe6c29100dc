"""The account itself, its devices, the directory and blocks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.frames import ACCOUNT_ID_PATTERN, MAX_DEVICE_ID
from porch.server.api.deps import PrincipalDep, ServicesDep

router = APIRouter(prefix="/v1", tags=["accounts"])

AccountIdPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]
# Bounded like every id on the wire: an id beyond the INTEGER column is 400, not a store error.
DeviceIdPath = Annotated[int, Path(ge=1, le=MAX_DEVICE_ID)]


class DeviceInfo(BaseModel):
    device_id: int
    name: str
    created: int
    last_seen_day: int
    has_keys: bool


class Me(BaseModel):
    account_id: str
    device_id: int
    phone: str
    username: str | None
    discoverable: bool
    devices: list[DeviceInfo]


class UsernameBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(max_length=40)] | None


class DiscoverableBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    discoverable: bool


class LookupBody(BaseModel):
    """Phone numbers travel in bodies, never URLs, so proxies and access logs never see them."""

    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(max_length=32)] | None = None
    username: Annotated[str, Field(max_length=40)] | None = None


class AccountRef(BaseModel):
    account_id: str


class PublicProfile(BaseModel):
    account_id: str
    username: str | None
    phone: str | None  # only when the account is discoverable by its number


class Blocks(BaseModel):
    blocked: list[str]


@router.get("/accounts/me", response_model=Me)
async def me(who: PrincipalDep, svc: ServicesDep) -> Me:
    account, devices = await svc.accounts.me(who)
    return Me(
        account_id=account.id,
        device_id=who.device_id,
        phone=account.phone,
        username=account.username,
        discoverable=account.discoverable,
        devices=[
            DeviceInfo(
                device_id=d.device_id,
                name=d.name,
                created=d.created,
                last_seen_day=d.last_seen_day,
                has_keys=d.has_keys,
            )
            for d in devices
        ],
    )


@router.put("/accounts/me/username", response_model=UsernameBody)
async def set_username(body: UsernameBody, who: PrincipalDep, svc: ServicesDep) -> UsernameBody:
    """Claim a unique username (or release it with null)."""
    return UsernameBody(username=await svc.accounts.set_username(who, body.username))


@router.put("/accounts/me/discoverable", status_code=204)
async def set_discoverable(body: DiscoverableBody, who: PrincipalDep, svc: ServicesDep) -> Response:
    """Whether others can find this account by its phone number (on by default)."""
    await svc.accounts.set_discoverable(who, body.discoverable)
    return Response(status_code=204)


@router.post("/directory/lookup", response_model=AccountRef)
async def lookup(body: LookupBody, who: PrincipalDep, svc: ServicesDep) -> AccountRef:
    """Find an account by phone number or username. Rate limited per account."""
    if (body.phone is None) == (body.username is None):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "give exactly one of phone or username")
    if body.phone is not None:
        return AccountRef(account_id=await svc.accounts.lookup_phone(who, body.phone))
    assert body.username is not None
    return AccountRef(account_id=await svc.accounts.lookup_username(who, body.username))


@router.get("/accounts/{account_id}/profile", response_model=PublicProfile)
async def public_profile(
    account_id: AccountIdPath, who: PrincipalDep, svc: ServicesDep
) -> PublicProfile:
    """The name a client shows for a sender. Rate limited with the directory lookups."""
    account = await svc.accounts.public_profile(who, account_id)
    return PublicProfile(
        account_id=account.id,
        username=account.username,
        phone=account.phone if account.discoverable else None,
    )


@router.get("/devices", response_model=list[DeviceInfo])
async def devices(who: PrincipalDep, svc: ServicesDep) -> list[DeviceInfo]:
    return (await me(who, svc)).devices


@router.delete("/devices/{device_id}", status_code=204)
async def delete_device(device_id: DeviceIdPath, who: PrincipalDep, svc: ServicesDep) -> Response:
    await svc.accounts.delete_device(who, device_id)
    return Response(status_code=204)


@router.get("/blocks", response_model=Blocks)
async def blocks(who: PrincipalDep, svc: ServicesDep) -> Blocks:
    return Blocks(blocked=await svc.messages.blocks(who))


@router.put("/blocks/{account_id}", status_code=204)
async def block(account_id: AccountIdPath, who: PrincipalDep, svc: ServicesDep) -> Response:
    """Drop every future message from this account to this one."""
    await svc.messages.set_block(who, account_id, True)
    return Response(status_code=204)


@router.delete("/blocks/{account_id}", status_code=204)
async def unblock(account_id: AccountIdPath, who: PrincipalDep, svc: ServicesDep) -> Response:
    await svc.messages.set_block(who, account_id, False)
    return Response(status_code=204)
