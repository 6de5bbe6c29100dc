"""Server frame models: bounds, parse_server_frame and its forward-compatibility rule."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from porch.protocol import server_frames as sf
from porch.protocol.client_frames import MAX_ERROR_MESSAGE, parse_client_frame
from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError

from .samples import ACCOUNT, server_samples

HEAD = {"type": "envelope", "id": 1, "from": ACCOUNT, "from_device": 1, "ts": 1}
# (sample, field, value): each value is just outside the field's range (docs/protocol.md).
OUT_OF_BOUNDS: list[tuple[str, str, Any]] = [
    ("ready", "device", 0),
    ("ready", "device", 2**31),
    ("ready", "account", "not-an-account"),
    ("ready", "server_time", -1),
    ("ready", "one_time_keys", -1),
    ("sent", "id", "has space"),
    ("sent", "id", "x" * 65),
    ("sent", "ts", 2**63),
    ("envelope", "id", -1),
    ("envelope", "id", 2**63),
    ("envelope", "from", "x"),
    ("envelope", "from_device", 0),
    ("envelope", "kind", 256),
    ("envelope", "kind", -1),
    ("envelope", "body", ""),
    ("envelope", "body", "not base64!"),
    ("envelope", "body", "A" * (sf.MAX_ENVELOPE_BYTES + 1)),
    ("envelope_too_large", "id", 0),
    ("envelope_too_large", "too_large", False),
    ("envelope_too_large", "size", 0),
    ("envelope_too_large", "size", 2**53),
    ("envelopes", "items", []),
    ("error", "code", "no_such_code_in_v1_models"),
    ("error", "message", ""),
    ("error", "message", "m" * (MAX_ERROR_MESSAGE + 1)),
    ("error_bad_frame", "ref", "r" * 65),
    ("error_bad_frame", "frame_type", "teleport"),
    (
        "error_mismatched",
        "accounts",
        [{"account": ACCOUNT, "missing": [0], "extra": [], "stale": []}],
    ),
    (
        "error_mismatched",
        "accounts",
        [
            {
                "account": ACCOUNT,
                "missing": [],
                "stale": [],
                "extra": list(range(1, sf.MAX_DEVICES_PER_DESTINATION + 2)),
            }
        ],
    ),
    ("error_mismatched", "accounts", [{"account": "x", "missing": [], "extra": [], "stale": []}]),
    ("error_mismatched", "accounts", [{"account": ACCOUNT, "missing": [], "extra": []}]),
    (
        "error_mismatched",
        "accounts",
        [{"account": ACCOUNT, "missing": [], "extra": [1], "stale": []}]
        * (sf.MAX_DESTINATIONS + 1),
    ),
    (
        "error_stale",
        "accounts",
        [{"account": ACCOUNT, "missing": [], "extra": [], "stale": [2**31]}],
    ),
    ("error_too_large", "limit", 0),
    ("error_too_large", "limit", (1 << 20) + 1),
    ("error_rate_limited", "retry_after", 0),
    ("keys_low", "count", -1),
    ("group_changed", "revision", 2**53),
    ("group_changed", "revision", -1),
    ("group_changed", "group", "not-a-uuid"),
    ("pong", "n", -1),
    ("pong", "n", 2**53),
    ("pong", "n", "7"),
]


def out_of_bounds_frames() -> list[tuple[str, dict[str, Any]]]:
    samples = server_samples()
    frames = [(f"{s}.{k}={v!r:.20}", {**samples[s], k: v}) for s, k, v in OUT_OF_BOUNDS]
    many = [samples["envelope"]] * (sf.ENVELOPES_PER_FRAME + 1)
    frames.append(("envelopes.items=65", {**samples["envelopes"], "items": many}))
    return frames


@pytest.mark.parametrize(("name", "frame"), out_of_bounds_frames())
def test_models_refuse_out_of_bound_values(name: str, frame: dict[str, Any]) -> None:
    model = sf.SERVER_FRAME_MODELS[sf._server_tag(frame) or ""]
    with pytest.raises(ValidationError):
        model.model_validate(frame)


def test_every_kind_parses_to_its_model() -> None:
    samples = server_samples()
    assert isinstance(sf.parse_server_frame(dumps(samples["ready"])), sf.ReadyFrame)
    too_large = sf.parse_server_frame(dumps(samples["envelope_too_large"]))
    assert isinstance(too_large, sf.TooLargeEnvelopeFrame) and too_large.too_large is True
    batch = sf.parse_server_frame(dumps(samples["envelopes_packed"]))
    assert isinstance(batch, sf.EnvelopesFrame)
    assert [type(i) for i in batch.items] == [sf.EnvelopeFrame, sf.TooLargeEnvelopeFrame]
    error = sf.parse_server_frame(dumps(samples["error_mismatched"]))
    assert isinstance(error, sf.ErrorFrame)
    assert (error.code, error.ref) == (ErrorCode.MISMATCHED_DEVICES, "m1")
    assert not isinstance(error.accounts, type(sf.MISSING))
    first, second = error.accounts
    assert (first.account, first.missing, first.extra, first.stale) == (ACCOUNT, [2, 3], [4], [])
    assert (second.account, second.extra) == (samples["error_stale"]["accounts"][0]["account"], [1])


def test_unknown_types_and_codes_are_unknown_frames() -> None:
    later = sf.parse_server_frame(b'{"type":"call_offer","sdp":"v=0"}')
    assert later == sf.UnknownFrame(type="call_offer", data={"type": "call_offer", "sdp": "v=0"})
    new_code = sf.parse_server_frame(b'{"type":"error","code":"quota","message":"full"}')
    assert isinstance(new_code, sf.UnknownFrame) and new_code.type == "error"


def test_unknown_fields_are_ignored() -> None:
    frame = {**server_samples()["sent"], "trace": "x"}
    parsed = sf.parse_server_frame(dumps(frame))
    assert isinstance(parsed, sf.SentFrame) and parsed.id == "Qm9b3e0T1mFv"
    item = {**server_samples()["envelope"], "sealed": True}
    batch = sf.parse_server_frame(dumps({"type": "envelopes", "items": [item]}))
    assert isinstance(batch, sf.EnvelopesFrame) and batch.items[0].id == 41


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b"{}",
        b'{"type":7}',
        b"not json",
        b'{"type":"pong"}',
        b'{"type":"error","code":5,"message":"not a code"}',
        dumps(HEAD),  # neither kind and body nor too_large and size
        dumps({**HEAD, "too_large": True}),
    ],
)
def test_what_is_not_a_valid_known_frame_is_bad_frame(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        sf.parse_server_frame(data)
    assert info.value.code == ErrorCode.BAD_FRAME


def test_an_error_about_a_long_field_name_stays_small() -> None:
    # Regression: the message quoted an unknown field's name whole (up to the frame limit).
    frame = orjson.dumps({"type": "ack", "ids": [1], "A" * 100_000: 1, "B" * 100_000: 2})
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(frame)
    assert len(info.value.message) <= MAX_ERROR_MESSAGE
    assert "AAAA" in info.value.message  # still says which field
    assert len(dumps(sf.error(info.value))) < 2 * MAX_ERROR_MESSAGE
