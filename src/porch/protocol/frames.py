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
ENVELOPES_PER_FRAME = 64

# Integer bounds (docs/protocol.md, "Frames"): ids are SQL BIGINT / INTEGER columns, so a
# number outside them is refused here, as bad_frame, before any store sees it.
MAX_ENVELOPE_ID = 2**63 - 1
MAX_DEVICE_ID = 2**31 - 1
MAX_PING_N = 2**53 - 1  # exact in a JavaScript number, so a browser echoes it unchanged

# Size promises (docs/protocol.md, "Frame size limits"). PORCH_MAX_FRAME_BYTES may not exceed
# MAX_CLIENT_FRAME_BYTES; an envelope's body is a part of one accepted client frame, and the
# envelope's other fields (ids, account, timestamp) with the `envelopes` wrapper take far
# less than ENVELOPE_OVERHEAD_BYTES. So every envelope the protocol accepts fits in a server
# frame of MAX_SERVER_FRAME_BYTES; one stored by other means that does not is replaced by a
# `too_large` marker rather than sent.
MAX_CLIENT_FRAME_BYTES = 1 << 20
ENVELOPE_OVERHEAD_BYTES = 1024
MAX_SERVER_FRAME_BYTES = MAX_CLIENT_FRAME_BYTES + ENVELOPE_OVERHEAD_BYTES

AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]
DeviceId = Annotated[int, Field(ge=1, le=MAX_DEVICE_ID)]
EnvelopeId = Annotated[int, Field(ge=1, le=MAX_ENVELOPE_ID)]
ClientMessageId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]

CLIENT_FRAME_TYPES = frozenset({"auth", "send", "ack", "reject", "ping"})
# Why a client could not take an envelope (`reject`); the server counts them by reason.
RejectReason = Literal["too_large", "malformed", "unprocessable"]


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
    ids: Annotated[list[EnvelopeId], Field(min_length=1, max_length=MAX_ACK_IDS)]


class RejectFrame(_Frame):
    """The client cannot take these envelopes (too large, malformed): the server deletes them
    like acknowledged ones, so that one bad envelope can never hold up a queue."""

    type: Literal["reject"]
    ids: Annotated[list[EnvelopeId], Field(min_length=1, max_length=MAX_ACK_IDS)]
    reason: RejectReason


class PingFrame(_Frame):
    type: Literal["ping"]
    n: Annotated[int, Field(ge=0, le=MAX_PING_N)] | None = None


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


def envelope_too_large(
    envelope_id: int, sender: str, sender_device: int, ts: int, size: int
) -> dict[str, Any]:
    """Sent in place of an envelope that cannot fit in MAX_SERVER_FRAME_BYTES: who sent it and
    when, without kind and body. The client rejects (or acknowledges) it and the queue moves."""
    return {
        "type": "envelope",
        "id": envelope_id,
        "from": sender,
        "from_device": sender_device,
        "ts": ts,
        "too_large": True,
        "size": size,
    }


def envelopes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several envelope frames in one, for clients that asked for batches (auth.batch)."""
    return {"type": "envelopes", "items": items}


_BATCH_HEAD = b'{"type":"envelopes","items":['
_BATCH_TAIL = b"]}"
# The largest encoded envelope that can go out, alone or as the one item of a batch.
MAX_ENVELOPE_BYTES = MAX_SERVER_FRAME_BYTES - len(_BATCH_HEAD) - len(_BATCH_TAIL)


def pack_envelopes(
    items: list[bytes],
    max_items: int = ENVELOPES_PER_FRAME,
    max_bytes: int = MAX_SERVER_FRAME_BYTES,
) -> list[bytes]:
    """Encoded envelope frames -> encoded `envelopes` frames, in order, each with at most
    max_items items and max_bytes bytes (the same bytes as dumps(envelopes(...)) would give).
    Every item must fit on its own (len <= MAX_ENVELOPE_BYTES for the default max_bytes)."""
    fixed = len(_BATCH_HEAD) + len(_BATCH_TAIL)
    frames: list[bytes] = []
    chunk: list[bytes] = []
    size = fixed
    for item in items:
        if fixed + len(item) > max_bytes:
            raise ValueError(f"an envelope of {len(item)} bytes cannot fit in {max_bytes}")
        extra = len(item) + (1 if chunk else 0)  # the comma between items
        if chunk and (len(chunk) >= max_items or size + extra > max_bytes):
            frames.append(_BATCH_HEAD + b",".join(chunk) + _BATCH_TAIL)
            chunk, size, extra = [], fixed, len(item)
        chunk.append(item)
        size += extra
    if chunk:
        frames.append(_BATCH_HEAD + b",".join(chunk) + _BATCH_TAIL)
    return frames


def error(exc: ProtocolError) -> dict[str, Any]:
    return {"type": "error", **exc.to_dict()}


def keys_low(count: int) -> dict[str, Any]:
    return {"type": "keys_low", "count": count}


def drained() -> dict[str, Any]:
    return {"type": "drained"}


def pong(n: int | None) -> dict[str, Any]:
    return {"type": "pong", "n": n}
