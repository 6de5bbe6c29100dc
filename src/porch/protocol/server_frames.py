"""Server -> client frames (docs/protocol.md, "Server frames").

The models are the shape of every frame the server sends, with the bounds the protocol
promises, and the source of docs/protocol.schema.json. The server builds frames with the plain
functions below them: per-message frames (envelope, sent, pong) go straight to dicts for
orjson, because they are the hot path (docs/design.md, "Wire frames"), and
tests/unit/protocol/test_encoders.py proves each builder's JSON equal to its model's
`model_dump_json`; the rarer frames (ready, error) are validated through their model, so that a
detail a service adds without declaring it fails in the tests, not in a client.

`parse_server_frame` is the client's side. Forward compatibility (docs/protocol.md, section 1):
unknown fields are ignored, and a frame of a type this version does not know, or an error
with a code it does not know, comes back as an UnknownFrame holding the decoded object.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    MISSING,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
)

from porch.protocol.client_frames import CLIENT_FRAME_TYPES, MAX_ERROR_MESSAGE, _describe
from porch.protocol.codec import loads
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.fields import (
    BASE64_PATTERN,
    ENVELOPES_PER_FRAME,
    MAX_CLIENT_FRAME_BYTES,
    MAX_DESTINATIONS,
    MAX_DEVICES_PER_DESTINATION,
    MAX_ENVELOPE_ID,
    MAX_PING_N,
    MAX_SERVER_FRAME_BYTES,
    AccountId,
    CiphertextKind,
    ClientMessageId,
    DeviceId,
    EnvelopeId,
    GroupId,
    GroupRevision,
    PingN,
    Timestamp,
)

_BATCH_HEAD = b'{"type":"envelopes","items":['
_BATCH_TAIL = b"]}"
# The largest encoded envelope that can go out, alone or as the one item of a batch.
MAX_ENVELOPE_BYTES = MAX_SERVER_FRAME_BYTES - len(_BATCH_HEAD) - len(_BATCH_TAIL)
# Counts: one-time keys (the server keeps at most 500 a device).
MAX_COUNT = 2**31 - 1
MAX_REF = 64

ClientFrameType = Literal["auth", "send", "ack", "reject", "ping"]
assert set(get_args(ClientFrameType)) == CLIENT_FRAME_TYPES


class _ServerFrame(BaseModel):
    # Closed (additionalProperties false in the schema): the server sends exactly these
    # fields. parse_server_frame drops unknown ones before validating, as clients must.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        serialize_by_alias=True,
        validate_by_name=True,
        validate_by_alias=True,
    )


class ReadyFrame(_ServerFrame):
    """Authentication succeeded: always the first frame after a good `auth`."""

    type: Literal["ready"]
    account: AccountId
    device: DeviceId
    server_time: Timestamp
    one_time_keys: Annotated[int, Field(ge=0, le=MAX_COUNT)]


class SentFrame(_ServerFrame):
    """A `send` was accepted (stored after commit, dropped for a block, or forwarded)."""

    type: Literal["sent"]
    id: ClientMessageId
    ts: Timestamp


class EnvelopeFrame(_ServerFrame):
    """A message for this device. `id` 0 is an online-only envelope (never acknowledged)."""

    type: Literal["envelope"]
    id: Annotated[int, Field(ge=0, le=MAX_ENVELOPE_ID)]
    from_: Annotated[AccountId, Field(alias="from")]
    from_device: DeviceId
    ts: Timestamp
    kind: CiphertextKind
    body: Annotated[str, Field(min_length=1, max_length=MAX_ENVELOPE_BYTES, pattern=BASE64_PATTERN)]


class TooLargeEnvelopeFrame(_ServerFrame):
    """Sent in place of a stored envelope whose frame cannot fit in MAX_SERVER_FRAME_BYTES:
    who sent it and when, without kind and body. The client rejects (or acknowledges) it."""

    type: Literal["envelope"]
    id: EnvelopeId
    from_: Annotated[AccountId, Field(alias="from")]
    from_device: DeviceId
    ts: Timestamp
    too_large: Literal[True]
    size: Annotated[int, Field(ge=1, le=MAX_PING_N)]  # bytes of the frame it would have had


def _envelope_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "envelope_too_large" if "too_large" in value else "envelope"
    return "envelope_too_large" if isinstance(value, TooLargeEnvelopeFrame) else "envelope"


# Both variants are `"type": "envelope"`; the presence of `too_large` tells them apart.
AnyEnvelope = Annotated[
    Annotated[EnvelopeFrame, Tag("envelope")]
    | Annotated[TooLargeEnvelopeFrame, Tag("envelope_too_large")],
    Discriminator(_envelope_tag),
]


class EnvelopesFrame(_ServerFrame):
    """Several queued envelopes at once, only to a client that authenticated with batch."""

    type: Literal["envelopes"]
    items: Annotated[list[AnyEnvelope], Field(min_length=1, max_length=ENVELOPES_PER_FRAME)]


DeviceIds = Annotated[list[DeviceId], Field(max_length=MAX_DEVICES_PER_DESTINATION)]


class AccountDevices(_ServerFrame):
    """One destination whose device list was wrong (mismatched_devices, stale_devices)."""

    account: AccountId
    missing: DeviceIds
    extra: DeviceIds
    stale: DeviceIds


class ErrorFrame(_ServerFrame):
    """A frame was refused. Details are present only with the codes that have them
    (docs/protocol.md, "error details"); `ref` may be null for a bad_frame without an id."""

    type: Literal["error"]
    # Not strict: parsed from JSON, the code is a string (StrEnum values are accepted as is).
    code: Annotated[ErrorCode, Field(strict=False)]
    message: Annotated[str, Field(min_length=1, max_length=MAX_ERROR_MESSAGE)]
    ref: Annotated[str, Field(max_length=MAX_REF)] | MISSING | None = MISSING
    frame_type: ClientFrameType | MISSING = MISSING
    # Only the wrong destinations, each once (docs/protocol.md, "Sending").
    accounts: Annotated[list[AccountDevices], Field(max_length=MAX_DESTINATIONS)] | MISSING = (
        MISSING
    )
    limit: Annotated[int, Field(ge=1, le=MAX_CLIENT_FRAME_BYTES)] | MISSING = MISSING
    retry_after: Annotated[int, Field(ge=1, le=MAX_COUNT)] | MISSING = MISSING


class KeysLowFrame(_ServerFrame):
    """Someone claimed this device's one-time keys and few are left: upload more."""

    type: Literal["keys_low"]
    count: Annotated[int, Field(ge=0, le=MAX_COUNT)]


class GroupChangedFrame(_ServerFrame):
    """A group this device's account is (or was, until now) a member of changed: a hint to
    refetch it (GET /v1/groups/{id}); online-only, never stored (docs/protocol.md, "Groups")."""

    type: Literal["group_changed"]
    group: GroupId
    revision: GroupRevision


class DrainedFrame(_ServerFrame):
    """Once per connection: the queued backlog has been handed over (not acknowledged)."""

    type: Literal["drained"]


class PongFrame(_ServerFrame):
    """The answer to `ping`, with its `n` (null when the ping had none)."""

    type: Literal["pong"]
    n: PingN | None


class UnknownFrame(BaseModel):
    """A frame this version cannot interpret (forward compatibility): skip it. Not sent by
    this server, so not in the schema."""

    model_config = ConfigDict(frozen=True)

    type: str
    data: dict[str, Any]


def _server_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        return _envelope_tag(value) if kind == "envelope" else kind
    if isinstance(value, (EnvelopeFrame, TooLargeEnvelopeFrame)):
        return _envelope_tag(value)
    return getattr(value, "type", None)


AnyServerFrame = (
    ReadyFrame
    | SentFrame
    | EnvelopeFrame
    | TooLargeEnvelopeFrame
    | EnvelopesFrame
    | ErrorFrame
    | KeysLowFrame
    | GroupChangedFrame
    | DrainedFrame
    | PongFrame
)
SERVER_FRAME_MODELS: dict[str, type[_ServerFrame]] = {
    "ready": ReadyFrame,
    "sent": SentFrame,
    "envelope": EnvelopeFrame,
    "envelope_too_large": TooLargeEnvelopeFrame,
    "envelopes": EnvelopesFrame,
    "error": ErrorFrame,
    "keys_low": KeysLowFrame,
    "group_changed": GroupChangedFrame,
    "drained": DrainedFrame,
    "pong": PongFrame,
}
ServerFrame = Annotated[
    Annotated[ReadyFrame, Tag("ready")]
    | Annotated[SentFrame, Tag("sent")]
    | Annotated[EnvelopeFrame, Tag("envelope")]
    | Annotated[TooLargeEnvelopeFrame, Tag("envelope_too_large")]
    | Annotated[EnvelopesFrame, Tag("envelopes")]
    | Annotated[ErrorFrame, Tag("error")]
    | Annotated[KeysLowFrame, Tag("keys_low")]
    | Annotated[GroupChangedFrame, Tag("group_changed")]
    | Annotated[DrainedFrame, Tag("drained")]
    | Annotated[PongFrame, Tag("pong")],
    Discriminator(_server_tag),
]
_server_frame: TypeAdapter[AnyServerFrame] = TypeAdapter(ServerFrame)
SERVER_FRAME_TYPES = frozenset(SERVER_FRAME_MODELS) - {"envelope_too_large"}
_KNOWN_CODES = frozenset(code.value for code in ErrorCode)


def parse_server_frame(data: str | bytes) -> AnyServerFrame | UnknownFrame:
    """Decode one server frame. Raise ProtocolError(bad_frame) for what is not a frame at all
    or a known frame with invalid fields; return UnknownFrame for a type (or an error code)
    this version does not know. Unknown fields are ignored."""
    obj = loads(data)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame needs a string field 'type'")
    code = obj.get("code")
    if kind not in SERVER_FRAME_TYPES or (
        kind == "error" and isinstance(code, str) and code not in _KNOWN_CODES
    ):
        return UnknownFrame(type=kind, data=obj)
    try:
        return _server_frame.validate_python(_known_fields(obj))
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, _describe(exc), frame_type=kind) from None


def _known_fields(obj: dict[str, Any]) -> dict[str, Any]:
    tag = _server_tag(obj)
    model = SERVER_FRAME_MODELS.get(tag) if tag is not None else None
    if model is None:
        return obj
    names = {f.alias or name for name, f in model.model_fields.items()}
    known = {k: v for k, v in obj.items() if k in names}
    items = known.get("items")
    if model is EnvelopesFrame and isinstance(items, list):
        known["items"] = [_known_fields(i) if isinstance(i, dict) else i for i in items]
    return known


# Builders: what the gateway and the services send ------------------------------------------


def ready(account: str, device: int, server_time: int, one_time_keys: int) -> dict[str, Any]:
    frame = ReadyFrame(
        type="ready",
        account=account,
        device=device,
        server_time=server_time,
        one_time_keys=one_time_keys,
    )
    return frame.model_dump(mode="json")


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
    """Validated through ErrorFrame: every detail a service attaches must be declared there
    (and so in the schema), with its bounds."""
    frame = ErrorFrame.model_validate({"type": "error", **exc.to_dict()})
    return frame.model_dump(mode="json")


def keys_low(count: int) -> dict[str, Any]:
    return {"type": "keys_low", "count": count}


def group_changed(group_id: str, revision: int) -> dict[str, Any]:
    return {"type": "group_changed", "group": group_id, "revision": revision}


def drained() -> dict[str, Any]:
    return {"type": "drained"}


def pong(n: int | None) -> dict[str, Any]:
    return {"type": "pong", "n": n}
