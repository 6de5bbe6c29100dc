"""One sample of every frame kind, both directions, built by the builders the code sends with
(and for envelopes, by the gateway's own encoders), for the encoder and schema tests."""

from __future__ import annotations

from typing import Any

import orjson

from porch.protocol import client_frames as cf
from porch.protocol import server_frames as sf
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.delivery import encode_envelope, envelope_batches
from porch.server.store.base import Envelope

ACCOUNT = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
BODY = "aGVsbG8"  # b"hello", unpadded base64
TS = 1_700_000_000_000


def stored(envelope_id: int, body: str = BODY) -> Envelope:
    return Envelope(envelope_id, ACCOUNT, 1, OTHER, 2, TS + envelope_id, 1, body)


def client_samples() -> dict[str, dict[str, Any]]:
    msg = cf.device_message(1, 583681599, 0, BODY)
    to_other = cf.destination(OTHER, [msg, cf.device_message(2, 0, 1, "AAAA")])
    fanned = [cf.device_message(3, 1), cf.device_message(4, 2**32 - 1)]
    return {
        "auth": cf.auth(ACCOUNT, 1, "pw", batch=True),
        "auth_default": cf.auth(ACCOUNT, 2**31 - 1, "p" * 256),
        "send": cf.send("Qm9b3e0T1mFv", [to_other]),
        "send_shared": cf.send(
            "g-1", [to_other, cf.destination(ACCOUNT, fanned)], shared=cf.shared(2, BODY)
        ),
        "send_ephemeral": cf.send("t-1", [cf.destination(OTHER, [msg])], ephemeral=True),
        "send_ttl": cf.send("d-1", [to_other], ttl=31_536_000),
        "ack": cf.ack([1, 2, 2**63 - 1]),
        "reject": cf.reject([7], "too_large"),
        "ping": cf.ping(2**53 - 1),
        "ping_none": cf.ping(),
    }


def server_samples() -> dict[str, dict[str, Any]]:
    """Decoded from the bytes the server writes, so what is checked is what goes out."""
    too_large = orjson.loads(
        orjson.dumps(sf.envelope_too_large(9, OTHER, 2, TS, sf.MAX_ENVELOPE_BYTES + 1))
    )
    (batch,) = envelope_batches([stored(1), stored(2)], encode_envelope)
    (packed,) = sf.pack_envelopes([encode_envelope(stored(3)), orjson.dumps(too_large)])
    mismatch = ProtocolError(
        ErrorCode.MISMATCHED_DEVICES,
        "devices differ",
        ref="m1",
        accounts=[
            {"account": ACCOUNT, "missing": [2, 3], "extra": [4], "stale": []},
            {"account": OTHER, "missing": [], "extra": [1], "stale": []},
        ],
    )
    return {
        "ready": sf.ready(ACCOUNT, 1, TS, 50),
        "sent": sf.sent("Qm9b3e0T1mFv", TS),
        "envelope": orjson.loads(encode_envelope(stored(41))),
        "envelope_online_only": sf.envelope(0, OTHER, 2, TS, 1, BODY),
        "envelope_too_large": too_large,
        "envelopes": orjson.loads(batch),
        "envelopes_packed": orjson.loads(packed),
        "error": sf.error(ProtocolError(ErrorCode.AUTH_FAILED, "wrong password")),
        "error_mismatched": sf.error(mismatch),
        "error_stale": sf.error(
            ProtocolError(
                ErrorCode.STALE_DEVICES,
                "re-registered",
                ref="m1",
                accounts=[{"account": OTHER, "missing": [], "extra": [], "stale": [1]}],
            )
        ),
        "error_bad_frame": sf.error(
            ProtocolError(ErrorCode.BAD_FRAME, "ids: too short", ref=None, frame_type="ack")
        ),
        "error_too_large": sf.error(
            ProtocolError(ErrorCode.FRAME_TOO_LARGE, "too large", limit=262_144)
        ),
        "error_rate_limited": sf.error(
            ProtocolError(ErrorCode.RATE_LIMITED, "slow down", ref="m2", retry_after=30)
        ),
        "keys_low": sf.keys_low(4),
        "group_changed": sf.group_changed("0b9f0c4e-5a4c-4d8e-9b1e-2f3a4b5c6d7e", 3),
        "drained": sf.drained(),
        "pong": sf.pong(7),
        "pong_none": sf.pong(None),
    }
