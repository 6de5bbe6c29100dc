"""Push routes (docs/protocol.md, "Push"): the VAPID key, and a device's subscription.

The subscription body is the browser's `PushSubscription.toJSON()` as it is, so the web client
sends what `pushManager.subscribe()` gave it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from porch.server.api.deps import PrincipalDep, ServicesDep
from porch.server.services.push import MAX_ENDPOINT_LENGTH, MAX_KEY_LENGTH

router = APIRouter(prefix="/v1/push", tags=["push"])

B64URL = r"^[A-Za-z0-9_-]+={0,2}$"
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=B64URL)]


class VapidOut(BaseModel):
    public_key: str  # base64url of the 65-byte P-256 point: the applicationServerKey


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p256dh: Key
    auth: Key


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: Annotated[str, Field(min_length=9, max_length=MAX_ENDPOINT_LENGTH)]
    # Sent by browsers (null in practice); not stored: a push service answers 404/410 when a
    # subscription has expired, and that deletes it.
    expirationTime: Annotated[int, Field(ge=0, le=2**53)] | None = None
    keys: SubscriptionKeys


@router.get("/vapid", response_model=VapidOut)
async def vapid(svc: ServicesDep) -> VapidOut:
    """The server's VAPID public key, for `pushManager.subscribe({applicationServerKey})`."""
    return VapidOut(public_key=await svc.push.vapid_public_key())


@router.put("/subscription", status_code=204)
async def subscribe(body: SubscriptionIn, who: PrincipalDep, svc: ServicesDep) -> Response:
    """Store this device's subscription, replacing the one it had (one per device)."""
    await svc.push.subscribe(who, body.endpoint, body.keys.p256dh, body.keys.auth)
    return Response(status_code=204)


@router.delete("/subscription", status_code=204)
async def unsubscribe(who: PrincipalDep, svc: ServicesDep) -> Response:
    """Delete this device's subscription (204 whether or not it had one)."""
    await svc.push.unsubscribe(who)
    return Response(status_code=204)
