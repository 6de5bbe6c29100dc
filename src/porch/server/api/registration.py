"""POST /v1/registration/code and /v1/registration/verify."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from porch.server.api.deps import ServicesDep, client_address

router = APIRouter(prefix="/v1/registration", tags=["registration"])


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(max_length=32)]


class CodeResponse(BaseModel):
    expires_in: int


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(max_length=32)]
    code: Annotated[str, Field(max_length=16)]
    name: Annotated[str, Field(max_length=64)] = ""


class VerifyResponse(BaseModel):
    account_id: str
    device_id: int
    registration_id: int
    password: str
    replaced: bool


@router.post("/code", status_code=202, response_model=CodeResponse)
async def request_code(body: CodeRequest, request: Request, svc: ServicesDep) -> CodeResponse:
    """Send a six-digit verification code to the number by the configured SMS provider."""
    ttl = await svc.accounts.request_code(body.phone, client_address(request))
    return CodeResponse(expires_in=ttl)


@router.post("/verify", response_model=VerifyResponse)
async def verify(body: VerifyRequest, request: Request, svc: ServicesDep) -> VerifyResponse:
    """Check the code and create device 1 (replacing every device if the number had some).

    The password in the answer is shown once; the server keeps only its hash."""
    reg = await svc.accounts.verify(body.phone, body.code, body.name, client_address(request))
    return VerifyResponse(
        account_id=reg.account_id,
        device_id=reg.device_id,
        registration_id=reg.registration_id,
        password=reg.password,
        replaced=reg.replaced,
    )
