"""WebSocket frames (docs/protocol.md, "Frames"): one import for both directions.

The frames live in client_frames (client -> server), server_frames (server -> client) and
fields (bounds shared by both); this module re-exports them so that `frames as f` keeps
working everywhere. The JSON Schema of all of them is docs/protocol.schema.json
(`python -m porch.protocol.schema`).
"""

from __future__ import annotations

from porch.protocol.client_frames import (
    CLIENT_FRAME_TYPES,
    AckFrame,
    AnyClientFrame,
    AuthFrame,
    ClientFrame,
    DeviceMessage,
    PingFrame,
    RejectFrame,
    RejectReason,
    SendFrame,
    parse_client_frame,
)
from porch.protocol.fields import (
    ACCOUNT_ID_PATTERN,
    BASE64_PATTERN,
    CLIENT_ID_PATTERN,
    ENVELOPE_OVERHEAD_BYTES,
    ENVELOPES_PER_FRAME,
    MAX_ACK_IDS,
    MAX_CLIENT_FRAME_BYTES,
    MAX_DEVICE_ID,
    MAX_DEVICES_PER_SEND,
    MAX_ENVELOPE_ID,
    MAX_PING_N,
    MAX_SERVER_FRAME_BYTES,
    AccountId,
    ClientMessageId,
    DeviceId,
    EnvelopeId,
)
from porch.protocol.server_frames import (
    MAX_ENVELOPE_BYTES,
    drained,
    envelope,
    envelope_too_large,
    envelopes,
    error,
    keys_low,
    pack_envelopes,
    pong,
    ready,
    sent,
)

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "BASE64_PATTERN",
    "CLIENT_FRAME_TYPES",
    "CLIENT_ID_PATTERN",
    "ENVELOPES_PER_FRAME",
    "ENVELOPE_OVERHEAD_BYTES",
    "MAX_ACK_IDS",
    "MAX_CLIENT_FRAME_BYTES",
    "MAX_DEVICES_PER_SEND",
    "MAX_DEVICE_ID",
    "MAX_ENVELOPE_BYTES",
    "MAX_ENVELOPE_ID",
    "MAX_PING_N",
    "MAX_SERVER_FRAME_BYTES",
    "AccountId",
    "AckFrame",
    "AnyClientFrame",
    "AuthFrame",
    "ClientFrame",
    "ClientMessageId",
    "DeviceId",
    "DeviceMessage",
    "EnvelopeId",
    "PingFrame",
    "RejectFrame",
    "RejectReason",
    "SendFrame",
    "drained",
    "envelope",
    "envelope_too_large",
    "envelopes",
    "error",
    "keys_low",
    "pack_envelopes",
    "parse_client_frame",
    "pong",
    "ready",
    "sent",
]
