"""Client -> server frames (docs/protocol.md, "Client frames").

The models validate what the server receives; anything else becomes a ProtocolError with a
stable code. The builders at the bottom (auth; send with destination, device_message and
shared; ack, reject, ping) are what the SDK and the benchmark write: plain dicts for orjson,
because a send is built per message, and a test (tests/unit/protocol/test_encoders.py) proves
each one's JSON equal to its model's `model_dump_json`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    MISSING,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from porch.protocol.codec import loads
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.fields import (
    BASE64_PATTERN,
    MAX_ACK_IDS,
    MAX_DESTINATIONS,
    MAX_DEVICES_PER_DESTINATION,
    MAX_DEVICES_PER_SEND,
    MAX_REGISTRATION_ID,
    AccountId,
    CiphertextKind,
    ClientMessageId,
    DeviceId,
    EnvelopeId,
    PingN,
    TtlSeconds,
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


Body = Annotated[str, Field(min_length=1, pattern=BASE64_PATTERN)]


class DeviceMessage(_Frame):
    """One device of a destination: its own ciphertext (`kind` and `body`), or neither, when
    it gets the send's `shared` one (docs/protocol.md, "Sending")."""

    device: DeviceId
    registration: Annotated[int, Field(ge=0, le=MAX_REGISTRATION_ID)]
    kind: CiphertextKind | MISSING = MISSING
    body: Body | MISSING = MISSING

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.kind is MISSING) != (self.body is MISSING):
            raise ValueError("a device has both kind and body, or neither")
        return self

    @property
    def own(self) -> bool:
        """True when the device has a ciphertext of its own (not the shared one)."""
        return self.body is not MISSING

    def ciphertext(self) -> tuple[int, str] | None:
        """(kind, body) of the device's own ciphertext; None when it gets the shared one."""
        if isinstance(self.kind, int) and isinstance(self.body, str):
            return self.kind, self.body
        return None


class Destination(_Frame):
    account: AccountId
    devices: Annotated[
        list[DeviceMessage], Field(min_length=1, max_length=MAX_DEVICES_PER_DESTINATION)
    ]

    @field_validator("devices")
    @classmethod
    def _distinct_devices(cls, value: list[DeviceMessage]) -> list[DeviceMessage]:
        if len({m.device for m in value}) != len(value):
            raise ValueError("each device may appear once")
        return value


class SharedBody(_Frame):
    """One ciphertext for every device without its own (a Megolm message): stored once."""

    kind: CiphertextKind
    body: Body


class SendFrame(_Frame):
    type: Literal["send"]
    id: ClientMessageId
    destinations: Annotated[list[Destination], Field(min_length=1, max_length=MAX_DESTINATIONS)]
    shared: SharedBody | None = None
    ephemeral: bool = False
    # Seconds the server may keep this send's envelopes undelivered (a disappearing message):
    # absent means the normal retention. Left out of the JSON when None, so that a send without
    # one is byte-identical to what older clients write (docs/protocol.md, "Sending").
    ttl: TtlSeconds | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len({d.account for d in self.destinations}) != len(self.destinations):
            raise ValueError("each account may appear once")
        total = sum(len(d.devices) for d in self.destinations)
        if total > MAX_DEVICES_PER_SEND:
            raise ValueError(f"at most {MAX_DEVICES_PER_SEND} devices in one send")
        uses_shared = any(not m.own for d in self.destinations for m in d.devices)
        if uses_shared and self.shared is None:
            raise ValueError("a device without its own body needs the send's shared body")
        if self.shared is not None and not uses_shared:
            # Refused rather than stored for nobody (docs/protocol.md, "Sending").
            raise ValueError("shared is given but no device uses it")
        return self


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
    return validate_client_object(loads(data))


def validate_client_object(obj: Any) -> AnyClientFrame:
    """parse_client_frame after the JSON: obj is what the frame decoded to."""
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


def device_message(
    device: int, registration: int, kind: int | None = None, body: str | None = None
) -> dict[str, Any]:
    """A device entry: with kind and body, its own ciphertext; without, the shared one."""
    if kind is None or body is None:
        return {"device": device, "registration": registration}
    return {"device": device, "registration": registration, "kind": kind, "body": body}


def destination(account: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """devices are device_message dicts."""
    return {"account": account, "devices": devices}


def shared(kind: int, body: str) -> dict[str, Any]:
    return {"kind": kind, "body": body}


def send(
    client_id: str,
    destinations: list[dict[str, Any]],
    shared: dict[str, Any] | None = None,
    ephemeral: bool = False,
    ttl: int | None = None,
) -> dict[str, Any]:
    """destinations are destination dicts; shared a shared() dict or None; ttl seconds (written
    only when given, as the model leaves it out)."""
    frame: dict[str, Any] = {
        "type": "send",
        "id": client_id,
        "destinations": destinations,
        "shared": shared,
        "ephemeral": ephemeral,
    }
    if ttl is not None:
        frame["ttl"] = ttl
    return frame


def ack(ids: list[int]) -> dict[str, Any]:
    return {"type": "ack", "ids": ids}


def reject(ids: list[int], reason: str) -> dict[str, Any]:
    """reason is one of RejectReason (the SDK keeps them as plain strings)."""
    return {"type": "reject", "ids": ids, "reason": reason}


def ping(n: int | None = None) -> dict[str, Any]:
    return {"type": "ping", "n": n}
