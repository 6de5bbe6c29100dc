"""Client -> server frames (docs/protocol.md, "Client frames").

The models validate what the server receives; anything else becomes a ProtocolError with a
stable code. The builders at the bottom (auth, send, ack, reject, ping) are what the SDK and
the benchmark write: plain dicts for orjson, because a send is built per message, and a test
(tests/unit/protocol/test_encoders.py) proves each one's JSON equal to its model's
`model_dump_json`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from porch.protocol.codec import loads
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.fields import (
    BASE64_PATTERN,
    MAX_ACK_IDS,
    MAX_DEVICES_PER_SEND,
    MAX_REGISTRATION_ID,
    AccountId,
    ClientMessageId,
    DeviceId,
    EnvelopeId,
    PingN,
)

CLIENT_FRAME_TYPES = frozenset({"auth", "send", "ack", "reject", "ping"})
# Why a client could not take an envelope (`reject`); the server counts them by reason.
RejectReason = Literal["too_large", "malformed", "unprocessable"]
# An error message quotes at most this much of what it refuses (a field name can be as long
# as the frame), so that the error frame stays small whatever the client sent.
MAX_ERROR_MESSAGE = 1024
_MAX_QUOTED = 64


class _Frame(BaseModel):
    # Strict: unknown fields are refused and nothing is coerced ("1" is not an integer).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, serialize_by_alias=True)


class AuthFrame(_Frame):
    type: Literal["auth"]
    account: AccountId
    device: DeviceId
    password: Annotated[str, Field(min_length=1, max_length=256)]
    # The client understands "envelopes" frames: a backlog is then sent several envelopes
    # to a frame, which costs the server one frame (and one socket write) per batch.
    batch: bool = False


class DeviceMessage(_Frame):
    device: DeviceId
    registration: Annotated[int, Field(ge=0, le=MAX_REGISTRATION_ID)]
    kind: Literal[0, 1]
    body: Annotated[str, Field(min_length=1, pattern=BASE64_PATTERN)]


class SendFrame(_Frame):
    type: Literal["send"]
    id: ClientMessageId
    to: AccountId
    messages: Annotated[list[DeviceMessage], Field(min_length=1, max_length=MAX_DEVICES_PER_SEND)]
    ephemeral: bool = False

    @field_validator("messages")
    @classmethod
    def _distinct_devices(cls, value: list[DeviceMessage]) -> list[DeviceMessage]:
        if len({m.device for m in value}) != len(value):
            raise ValueError("each device may appear once")
        return value


class AckFrame(_Frame):
    type: Literal["ack"]
    ids: Annotated[list[EnvelopeId], Field(min_length=1, max_length=MAX_ACK_IDS)]


class RejectFrame(_Frame):
    """The client cannot take these envelopes (too large, malformed): the server deletes them
    like acknowledged ones, so that one bad envelope can never hold up a queue."""

    type: Literal["reject"]
    ids: Annotated[list[EnvelopeId], Field(min_length=1, max_length=MAX_ACK_IDS)]
    reason: RejectReason


class PingFrame(_Frame):
    type: Literal["ping"]
    n: PingN | None = None


AnyClientFrame = AuthFrame | SendFrame | AckFrame | RejectFrame | PingFrame
ClientFrame = Annotated[AnyClientFrame, Field(discriminator="type")]
_client_frame: TypeAdapter[AnyClientFrame] = TypeAdapter(ClientFrame)


def parse_client_frame(data: str | bytes) -> AnyClientFrame:
    """Validate one client frame; raise ProtocolError(bad_frame | unknown_type) otherwise."""
    obj = loads(data)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame needs a string field 'type'")
    if kind not in CLIENT_FRAME_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown frame type {kind[:40]!r}; expected one of {sorted(CLIENT_FRAME_TYPES)}",
        )
    try:
        return _client_frame.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError(
            ErrorCode.BAD_FRAME, _describe(exc), ref=_ref_of(obj), frame_type=kind
        ) from None


def _ref_of(obj: dict[str, Any]) -> str | None:
    ref = obj.get("id")
    return ref if isinstance(ref, str) and len(ref) <= 64 else None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"][1:]) or "frame"
        if len(where) > _MAX_QUOTED:  # an unknown field's name is the client's to choose
            where = where[:_MAX_QUOTED] + "..."
        parts.append(f"{where}: {err['msg'][:200]}")
    return "; ".join(parts)[:MAX_ERROR_MESSAGE]


# Builders: the wire form of each model, as a dict for orjson ----------------------------------


def auth(account: str, device: int, password: str, batch: bool = False) -> dict[str, Any]:
    return {
        "type": "auth",
        "account": account,
        "device": device,
        "password": password,
        "batch": batch,
    }


def device_message(device: int, registration: int, kind: int, body: str) -> dict[str, Any]:
    return {"device": device, "registration": registration, "kind": kind, "body": body}


def send(
    client_id: str, to: str, messages: list[dict[str, Any]], ephemeral: bool = False
) -> dict[str, Any]:
    """messages are device_message dicts."""
    return {"type": "send", "id": client_id, "to": to, "messages": messages, "ephemeral": ephemeral}


def ack(ids: list[int]) -> dict[str, Any]:
    return {"type": "ack", "ids": ids}


def reject(ids: list[int], reason: str) -> dict[str, Any]:
    """reason is one of RejectReason (the SDK keeps them as plain strings)."""
    return {"type": "reject", "ids": ids, "reason": reason}


def ping(n: int | None = None) -> dict[str, Any]:
    return {"type": "ping", "n": n}
