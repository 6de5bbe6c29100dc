"""Request dependencies: the service container and device authentication."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.services.accounts import AccountService, Principal
from porch.server.services.devices import DeviceService
from porch.server.services.groups import GroupService
from porch.server.services.keys import KeyService
from porch.server.services.media import MediaService
from porch.server.services.media_local import LocalMedia
from porch.server.services.messages import MessageService
from porch.server.services.push import PushService
from porch.server.store.base import Store


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    accounts: AccountService
    keys: KeyService
    messages: MessageService
    groups: GroupService
    devices: DeviceService
    media: MediaService
    local_media: LocalMedia | None  # the filesystem backend's part and blob routes
    push: PushService


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


def parse_basic(header: str | None) -> tuple[str, int, str]:
    """Authorization: Basic base64("<account_id>.<device_id>:<password>")."""
    if not header:
        raise ProtocolError(ErrorCode.AUTH_REQUIRED, "this request needs device credentials")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise ProtocolError(ErrorCode.AUTH_REQUIRED, "use HTTP Basic with device credentials")
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        account_id, _, device = user.rpartition(".")
        device_id = int(device)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ProtocolError(ErrorCode.AUTH_FAILED, "malformed credentials") from None
    if not account_id or not password or not 0 < device_id < 2**31:
        raise ProtocolError(ErrorCode.AUTH_FAILED, "malformed credentials")
    return account_id, device_id, password


async def principal(request: Request, svc: ServicesDep) -> Principal:
    account_id, device_id, password = parse_basic(request.headers.get("authorization"))
    return await svc.accounts.authenticate(account_id, device_id, password, client_address(request))


PrincipalDep = Annotated[Principal, Depends(principal)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
