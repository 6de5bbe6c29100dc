"""Linking devices over HTTP (spec C; docs/protocol.md section 3, "Linked devices").

The provisioning routes and /devices/link are open before any account exists on the new
device, so they are rate limited per client address (the trusted-proxy address, proxies.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from porch.server.api.deps import PrincipalDep, ServicesDep, client_address
from porch.server.services.devices import MAX_CHANNEL_BODY, MAX_WAIT_SECONDS

router = APIRouter(prefix="/v1", tags=["devices"])

B64 = r"^[A-Za-z0-9+/]+={0,2}$"
ChannelIdPath = Annotated[str, Path(min_length=36, max_length=36)]
# 4/3 of the raw cap, rounded up to whole base64 quanta.
ChannelBody = Annotated[
    str, Field(min_length=2, max_length=-(-MAX_CHANNEL_BODY // 3) * 4, pattern=B64)
]
# A list of 64 devices is 2.6 KiB raw.
ListBlob = Annotated[str, Field(min_length=4, max_length=4096, pattern=B64)]
Signature = Annotated[str, Field(min_length=86, max_length=88, pattern=B64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelOut(BaseModel):
    id: str
    expires_ms: int


class ChannelBodyIO(_Body):
    body: ChannelBody


class CodeOut(BaseModel):
    code: str
    expires_ms: int


class LinkIn(_Body):
    code: Annotated[str, Field(min_length=1, max_length=128)]
    name: Annotated[str, Field(max_length=64)] = ""


class LinkOut(BaseModel):
    account_id: str
    device_id: int
    password: str
    registration_id: int


class DeviceListIn(_Body):
    list: ListBlob
    signature: Signature


@router.post("/provisioning", response_model=ChannelOut)
async def open_channel(request: Request, svc: ServicesDep) -> ChannelOut:
    """A channel a new device waits on for its provisioning message (10 minutes)."""
    channel = await svc.devices.open_channel(client_address(request))
    return ChannelOut(id=channel.id, expires_ms=channel.expires_ms)


@router.get("/provisioning/{channel_id}", response_model=ChannelBodyIO)
async def wait_channel(
    channel_id: ChannelIdPath,
    request: Request,
    svc: ServicesDep,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0,
) -> ChannelBodyIO | Response:
    """The message once (the channel is then deleted); 204 if none came within `wait` s.
    At most MAX_WAITS_PER_ADDRESS waits are open at once from one address."""
    body = await svc.devices.wait_channel(channel_id, wait, client_address(request))
    if body is None:
        return Response(status_code=204)
    return ChannelBodyIO(body=body)


@router.put("/provisioning/{channel_id}", status_code=204)
async def fill_channel(
    channel_id: ChannelIdPath, body: ChannelBodyIO, who: PrincipalDep, svc: ServicesDep
) -> Response:
    await svc.devices.fill_channel(who, channel_id, body.body)
    return Response(status_code=204)


@router.post("/devices/provisioning_code", response_model=CodeOut)
async def provisioning_code(who: PrincipalDep, svc: ServicesDep) -> CodeOut:
    """A single-use code (10 minutes) that lets one new device join this account."""
    code = await svc.devices.provisioning_code(who)
    return CodeOut(code=code.code, expires_ms=code.expires_ms)


@router.post("/devices/link", response_model=LinkOut)
async def link(body: LinkIn, request: Request, svc: ServicesDep) -> LinkOut:
    """Add a device with a provisioning code. The password is shown once."""
    linked = await svc.devices.link(body.code, body.name, client_address(request))
    return LinkOut(
        account_id=linked.account_id,
        device_id=linked.device_id,
        password=linked.password,
        registration_id=linked.registration_id,
    )


@router.put("/devices/list", status_code=204)
async def put_list(body: DeviceListIn, who: PrincipalDep, svc: ServicesDep) -> Response:
    """Publish the account's device list, signed by its master key (a higher version)."""
    await svc.devices.put_list(who, body.list, body.signature)
    return Response(status_code=204)


@router.post("/devices/leave", status_code=204)
async def leave(body: DeviceListIn, who: PrincipalDep, svc: ServicesDep) -> Response:
    """This device removes itself ("sign out"), with the account's next list without it."""
    await svc.devices.leave(who, body.list, body.signature)
    return Response(status_code=204)
