"""POST /v1/registration/code and /v1/registration/verify (docs/protocol.md, "Registration")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from porch.server.api.deps import ServicesDep, client_address

router = APIRouter(prefix="/v1/registration", tags=["registration"])

# The shape is checked again by the service (43 URL-safe characters); this bounds the body.
SessionId = Annotated[str, Field(min_length=1, max_length=64)]


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(max_length=32)]
    session_id: SessionId | None = None


class CodeResponse(BaseModel):
    session_id: str
    expires_in: int
    next_code_in: int
    attempts_left: int


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: SessionId
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
    """Send a six-digit code to the number by the configured SMS provider, in a new
    registration session or (with session_id) in the client's current one."""
    sent = await svc.accounts.request_code(body.phone, client_address(request), body.session_id)
    return CodeResponse(
        session_id=sent.session_id,
        expires_in=sent.expires_in,
        next_code_in=sent.next_code_in,
        attempts_left=sent.attempts_left,
    )


@router.post("/verify", response_model=VerifyResponse)
async def verify(body: VerifyRequest, request: Request, svc: ServicesDep) -> VerifyResponse:
    """Check the session's code and create device 1 (replacing every device if the number
    had some). The password in the answer is shown once; the server keeps only its hash."""
    reg = await svc.accounts.verify(body.session_id, body.code, body.name, client_address(request))
    return VerifyResponse(
        account_id=reg.account_id,
        device_id=reg.device_id,
        registration_id=reg.registration_id,
        password=reg.password,
        replaced=reg.replaced,
    )
