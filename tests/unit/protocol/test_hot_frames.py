"""read_client_frame (protocol/hot_frames.py): the hand check of send, ack and reject accepts
exactly what the pydantic models accept, reads the same values, and refuses with the models'
own error (code, message, ref, frame_type)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from porch.protocol import client_frames as cf
from porch.protocol import hot_frames as hf
from porch.protocol.errors import ProtocolError
from porch.protocol.fields import (
    MAX_ACK_IDS,
    MAX_CIPHERTEXT_KIND,
    MAX_DESTINATIONS,
    MAX_DEVICE_ID,
    MAX_DEVICES_PER_DESTINATION,
    MAX_DEVICES_PER_SEND,
    MAX_ENVELOPE_ID,
    MAX_REGISTRATION_ID,
    MAX_TTL_SECONDS,
)

from . import test_frames
from .samples import ACCOUNT, BODY, OTHER, client_samples

# Values every integer field is tried with: its bounds and one past them come per field.
ODD = [None, True, False, 1.0, "1", [1], {}, 2**63, 2**64, -(2**63) - 1, 10**30]


def _outcome(obj: Any) -> tuple[str, Any]:
    """What the models make of obj, and what the hand check does: both as comparable data."""
    data = json.dumps(obj)
    try:
        model = cf.parse_client_frame(data)
    except ProtocolError as exc:
        expected: tuple[str, Any] = ("error", exc.to_dict())
    else:
        expected = ("ok", _model_data(model))
    try:
        got = hf.read_client_frame(data)
    except ProtocolError as exc:
        actual: tuple[str, Any] = ("error", exc.to_dict())
    else:
        actual = ("ok", _hot_data(got))
    assert actual == expected, obj
    return actual


def _model_data(frame: cf.AnyClientFrame) -> Any:
    if isinstance(frame, cf.SendFrame):
        return _hot_data(hf._from_model(frame))
    if isinstance(frame, cf.AckFrame | cf.RejectFrame):
        return _hot_data(hf._from_model(frame))
    return frame.model_dump()


def _hot_data(frame: hf.GatewayFrame) -> Any:
    if isinstance(frame, hf.Send):
        shared = None if frame.shared is None else (frame.shared.kind, frame.shared.body)
        dests = [
            (d.account, [(m.device, m.registration, m.kind, m.body) for m in d.devices])
            for d in frame.destinations
        ]
        return ("send", frame.id, dests, shared, frame.ephemeral, frame.ttl)
    if isinstance(frame, hf.Ack):
        return ("ack", frame.ids)
    if isinstance(frame, hf.Reject):
        return ("reject", frame.ids, frame.reason)
    return frame.model_dump()


def _send(**kw: Any) -> dict[str, Any]:
    msg = cf.device_message(1, 7, 1, BODY)
    return {**cf.send("id_1", [cf.destination(OTHER, [msg])]), **kw}


def _variants() -> Iterator[Any]:
    """Each hot frame with each field set to its bounds, one past them, 2**63 and values of
    the wrong type, removed, and joined by an unknown field."""
    send = _send()
    yield send
    for key in ("id", "destinations", "shared", "ephemeral", "ttl", "type"):
        for v in [*ODD, "", "x" * 65, "a" * 64, 0, 1, MAX_TTL_SECONDS, MAX_TTL_SECONDS + 1]:
            yield {**send, key: v}
        yield {k: v for k, v in send.items() if k != key}
    yield {**send, "extra": 1}
    fields = {
        "device": [0, 1, MAX_DEVICE_ID, MAX_DEVICE_ID + 1],
        "registration": [-1, 0, MAX_REGISTRATION_ID, MAX_REGISTRATION_ID + 1],
        "kind": [-1, 0, MAX_CIPHERTEXT_KIND, MAX_CIPHERTEXT_KIND + 1],
        "body": ["", "=", "A", "AB", "AB=", "AB==", "AB===", "ABC", "ABC=", "ABCD", "ABCD=",
                 "AB\n", "AB CD", "ü", "ABC+/==", "a-b_"],
    }  # fmt: skip
    for key, values in fields.items():
        for v in [*ODD, *values]:
            frame = copy.deepcopy(send)
            frame["destinations"][0]["devices"][0][key] = v
            yield frame
        frame = copy.deepcopy(send)
        del frame["destinations"][0]["devices"][0][key]
        yield frame
    for key, values in {"kind": fields["kind"], "body": fields["body"]}.items():
        for v in [*ODD, *values]:
            shared = {"kind": 2, "body": BODY, key: v}
            yield cf.send("s", [cf.destination(OTHER, [cf.device_message(1, 7)])], shared)
    for account in [ACCOUNT, ACCOUNT.upper(), ACCOUNT + "\n", ACCOUNT[:-1], 7, None]:
        yield cf.send("a", [cf.destination(account, [cf.device_message(1, 7, 1, BODY)])])
    per = MAX_DEVICES_PER_DESTINATION
    for n in (per, per + 1):
        msgs = [cf.device_message(i, 1, 1, BODY) for i in range(1, n + 1)]
        yield cf.send("many", [cf.destination(OTHER, msgs)])
    accounts = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(MAX_DESTINATIONS + 1)]
    for n in (MAX_DESTINATIONS, MAX_DESTINATIONS + 1):
        yield cf.send(
            "d", [cf.destination(a, [cf.device_message(1, 1, 1, BODY)]) for a in accounts[:n]]
        )
    full = [cf.device_message(i, 1) for i in range(1, per + 1)]
    for n in (MAX_DEVICES_PER_SEND // per, MAX_DEVICES_PER_SEND // per + 1):
        dests = [cf.destination(a, full) for a in accounts[:n]]
        yield cf.send("all", dests, cf.shared(2, BODY))
    for kind in ("ack", "reject"):
        for ids in [[], [0], [1], [MAX_ENVELOPE_ID], [MAX_ENVELOPE_ID + 1], [2**63], [2**64 - 1],
                    [-1], [True], [1.0], ["1"], [None], 3, None,
                    list(range(1, MAX_ACK_IDS + 1)), list(range(1, MAX_ACK_IDS + 2))]:  # fmt: skip
            for reason in ("malformed", "bored", None, 1, ["malformed"]):
                obj: dict[str, Any] = {"type": kind, "ids": ids, "reason": reason}
                if kind == "ack":
                    del obj["reason"]
                yield obj
        yield {"type": kind, "reason": "malformed"}
        yield {"type": kind, "ids": [1], "reason": "malformed", "extra": 1}
    yield {"type": "reject", "ids": [1]}


def test_the_hand_check_and_the_models_agree_on_every_variant() -> None:
    outcomes = [_outcome(obj) for obj in _variants()]
    # Both ways are exercised, and the bounds themselves are accepted.
    assert sum(1 for kind, _ in outcomes if kind == "ok") >= 30
    assert sum(1 for kind, _ in outcomes if kind == "error") >= 150


@pytest.mark.parametrize("name", list(client_samples()))
def test_every_sample_reads_like_its_model(name: str) -> None:
    kind, _ = _outcome(client_samples()[name])
    assert kind == "ok"


def _cases(test: Any, names: str | None = None) -> list[Any]:
    """The parameters of one of test_frames' parametrized tests (of `names`, if several)."""
    marks = [m for m in test.pytestmark if m.name == "parametrize"]
    [mark] = [m for m in marks if names is None or m.args[0] == names]
    return list(mark.args[1])


def _from_test_frames() -> Iterator[Any]:
    for change, _field in _cases(test_frames.test_bad_send_frame_keeps_ref):
        change = dict(change)
        yield test_frames._send(change.pop("messages", None), **change)
    for change, _field in _cases(test_frames.test_send_integers_out_of_range):
        yield test_frames._send(messages=[test_frames._msg(**change)])
    for bad_id in [*_cases(test_frames.test_send_frame_bad_id), 7, None, ["a"]]:
        yield test_frames._send(id=bad_id)
    yield from _cases(test_frames.test_bad_ack_frame)
    yield from _cases(test_frames.test_bad_reject_frame)
    for kind in ("ack", "reject"):
        for bad in _cases(test_frames.test_envelope_ids_out_of_range, "bad"):
            yield {"type": kind, "ids": [1, bad], "reason": "malformed"}


def test_every_refusal_of_the_frame_tests_is_the_same_error() -> None:
    cases = list(_from_test_frames())
    assert len(cases) > 50
    for obj in cases:
        kind, error = _outcome(obj)
        assert kind == "error" and error["code"] == "bad_frame"


def test_auth_and_ping_still_come_from_the_models() -> None:
    frame = hf.read_client_frame(json.dumps({"type": "ping", "n": 3}))
    assert isinstance(frame, cf.PingFrame) and frame.n == 3
    with pytest.raises(ProtocolError) as info:
        hf.read_client_frame("[1]")
    assert info.value.message == "a frame must be a JSON object"


def test_a_send_reads_into_the_gateways_objects() -> None:
    shared_only = cf.device_message(3, 9)
    obj = cf.send(
        "g-1",
        [cf.destination(OTHER, [cf.device_message(1, 7, 0, BODY), shared_only])],
        cf.shared(2, BODY),
        ttl=60,
    )
    frame = hf.read_client_frame(json.dumps(obj))
    assert isinstance(frame, hf.Send) and frame.type == "send"
    own, other = frame.destinations[0].devices
    assert (own.own, own.ciphertext()) == (True, (0, BODY))
    assert (other.own, other.ciphertext(), other.registration) == (False, None, 9)
    assert frame.shared is not None and (frame.shared.kind, frame.shared.body) == (2, BODY)
    assert (frame.ttl, frame.ephemeral) == (60, False)
