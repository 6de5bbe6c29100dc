"""WebSocket frames (docs/protocol.md, "Frames").

Client frames are validated here into typed objects; anything else becomes a ProtocolError with
a stable code. Server frames are built as plain dicts by the small constructors at the bottom,
because they are produced on the hot path and never need validating.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from porch.protocol.codec import loads
from porch.protocol.errors import ErrorCode, ProtocolError

ACCOUNT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_DEVICES_PER_SEND = 64
MAX_ACK_IDS = 1000

AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]
DeviceId = Annotated[int, Field(ge=1, le=2**31 - 1)]
ClientMessageId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]

CLIENT_FRAME_TYPES = frozenset({"auth", "send", "ack", "ping"})


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AuthFrame(_Frame):
    type: Literal["auth"]
    account: AccountId
    device: DeviceId
    password: Annotated[str, Field(min_length=1, max_length=256)]
    # The client understands "envelopes" frames: a backlog is then sent several envelopes
    # to a frame, which costs the server one frame (and one socket write) per batch.
    batch: bool = False


# Checked by pattern (in pydantic's Rust core) rather than by decoding: the server never
# decodes ciphertext, so it only needs to know the text is base64, not what it holds.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2,3}(?:==?)?)?$"


class DeviceMessage(_Frame):
    device: DeviceId
    registration: Annotated[int, Field(ge=0, le=2**32 - 1)]
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
    ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=MAX_ACK_IDS)]


class PingFrame(_Frame):
    type: Literal["ping"]
    n: int | None = None


ClientFrame = Annotated[AuthFrame | SendFrame | AckFrame | PingFrame, Field(discriminator="type")]
_client_frame: TypeAdapter[AuthFrame | SendFrame | AckFrame | PingFrame] = TypeAdapter(ClientFrame)


def parse_client_frame(data: str | bytes) -> AuthFrame | SendFrame | AckFrame | PingFrame:
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
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# Server frames -----------------------------------------------------------------------------


def ready(account: str, device: int, server_time: int, one_time_keys: int) -> dict[str, Any]:
    return {
        "type": "ready",
        "account": account,
        "device": device,
        "server_time": server_time,
        "one_time_keys": one_time_keys,
    }


def sent(client_id: str, ts: int) -> dict[str, Any]:
    return {"type": "sent", "id": client_id, "ts": ts}


def envelope(
    envelope_id: int, sender: str, sender_device: int, ts: int, kind: int, body: str
) -> dict[str, Any]:
    return {
        "type": "envelope",
        "id": envelope_id,
        "from": sender,
        "from_device": sender_device,
        "ts": ts,
        "kind": kind,
        "body": body,
    }


def envelopes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several envelope frames in one, for clients that asked for batches (auth.batch)."""
    return {"type": "envelopes", "items": items}


def error(exc: ProtocolError) -> dict[str, Any]:
    return {"type": "error", **exc.to_dict()}


def keys_low(count: int) -> dict[str, Any]:
    return {"type": "keys_low", "count": count}


def drained() -> dict[str, Any]:
    return {"type": "drained"}


def pong(n: int | None) -> dict[str, Any]:
    return {"type": "pong", "n": n}
