"""parse_client_frame: every valid client frame, and each way a frame can be malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from porch.protocol import frames as f
from porch.protocol.errors import ErrorCode, ProtocolError

ACCOUNT = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
BODY = "aGVsbG8"  # b"hello", unpadded base64


def _msg(device: int = 1, **kw: Any) -> dict[str, Any]:
    return {"device": device, "registration": 7, "kind": 0, "body": BODY, **kw}


OTHER = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def _dest(*devices: dict[str, Any], account: str = ACCOUNT) -> dict[str, Any]:
    return {"account": account, "devices": list(devices) or [_msg()]}


def _send(messages: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    """A send to ACCOUNT's devices `messages` (one destination), or to kw["destinations"]."""
    frame = {"type": "send", "id": "msg_1-A", "destinations": [_dest(*(messages or []))]}
    return {**frame, **kw}


def _accounts(n: int) -> list[str]:
    return [f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)]


class _Raw:
    def __init__(self, data: str | bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return repr(self.data)


def _parse(obj: Any) -> f.AuthFrame | f.SendFrame | f.AckFrame | f.PingFrame:
    return f.parse_client_frame(json.dumps(obj))


def _reject(obj: Any, code: ErrorCode = ErrorCode.BAD_FRAME) -> ProtocolError:
    """Parse a JSON-encoded obj (or raw str/bytes wrapped in _Raw) and expect an error."""
    data = obj.data if isinstance(obj, _Raw) else json.dumps(obj)
    with pytest.raises(ProtocolError) as info:
        f.parse_client_frame(data)
    assert info.value.code == code
    assert info.value.message  # readable, never empty
    return info.value


# Valid frames --------------------------------------------------------------------------------


def test_auth_frame() -> None:
    frame = _parse({"type": "auth", "account": ACCOUNT, "device": 1, "password": "secret"})
    assert isinstance(frame, f.AuthFrame)
    assert (frame.account, frame.device, frame.password) == (ACCOUNT, 1, "secret")


def test_send_frame() -> None:
    frame = _parse(_send(messages=[_msg(1), _msg(2, kind=1)], ephemeral=True))
    assert isinstance(frame, f.SendFrame)
    assert frame.id == "msg_1-A"
    (dest,) = frame.destinations
    assert dest.account == ACCOUNT
    assert [(m.device, m.kind) for m in dest.devices] == [(1, 0), (2, 1)]
    assert frame.shared is None
    assert frame.ephemeral is True


def test_send_frame_with_a_shared_body() -> None:
    shared_only = {"device": 3, "registration": 9}
    frame = _parse(
        _send(
            destinations=[_dest(_msg(1), shared_only), _dest(shared_only, account=OTHER)],
            shared={"kind": 2, "body": BODY},
        )
    )
    assert isinstance(frame, f.SendFrame) and frame.shared is not None
    assert (frame.shared.kind, frame.shared.body) == (2, BODY)
    first, second = frame.destinations
    assert [m.own for m in first.devices] == [True, False]
    assert second.account == OTHER and not second.devices[0].own


def test_send_frame_reserved_kind_is_opaque() -> None:
    frame = _parse(_send([_msg(kind=255)]))
    assert isinstance(frame, f.SendFrame) and frame.destinations[0].devices[0].kind == 255


def test_send_frame_ephemeral_defaults_to_false() -> None:
    frame = _parse(_send())
    assert isinstance(frame, f.SendFrame)
    assert frame.ephemeral is False


def test_send_frame_accepts_padded_base64_body() -> None:
    frame = _parse(_send(messages=[_msg(body="aGVsbG8=")]))
    assert isinstance(frame, f.SendFrame)


def test_send_frame_at_device_limits() -> None:
    per = f.MAX_DEVICES_PER_DESTINATION
    messages = [{"device": i, "registration": 1} for i in range(1, per + 1)]
    n = f.MAX_DEVICES_PER_SEND // per
    dests = [{"account": a, "devices": messages} for a in _accounts(n)]
    frame = _parse(_send(destinations=dests, shared={"kind": 2, "body": BODY}))
    assert isinstance(frame, f.SendFrame)
    assert sum(len(d.devices) for d in frame.destinations) == n * per <= f.MAX_DEVICES_PER_SEND


def test_send_frame_at_destination_limit() -> None:
    dests = [_dest(account=a) for a in _accounts(f.MAX_DESTINATIONS)]
    frame = _parse(_send(destinations=dests))
    assert isinstance(frame, f.SendFrame) and len(frame.destinations) == f.MAX_DESTINATIONS


def test_ack_frame() -> None:
    frame = _parse({"type": "ack", "ids": [1, 2, 3]})
    assert isinstance(frame, f.AckFrame)
    assert frame.ids == [1, 2, 3]


def test_ack_frame_at_id_limit() -> None:
    frame = _parse({"type": "ack", "ids": list(range(1, f.MAX_ACK_IDS + 1))})
    assert isinstance(frame, f.AckFrame)


@pytest.mark.parametrize("n", [None, 0, 42])
def test_ping_frame(n: int | None) -> None:
    obj: dict[str, Any] = {"type": "ping"}
    if n is not None:
        obj["n"] = n
    frame = _parse(obj)
    assert isinstance(frame, f.PingFrame)
    assert frame.n == n


def test_bytes_input_is_accepted() -> None:
    frame = f.parse_client_frame(b'{"type":"ping","n":1}')
    assert isinstance(frame, f.PingFrame)


def test_frames_are_frozen() -> None:
    frame = _parse({"type": "ping", "n": 1})
    with pytest.raises(Exception):  # noqa: B017 (pydantic's ValidationError on frozen models)
        frame.n = 2  # type: ignore[misc]


# Not a frame at all ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["", "{", "not json", b"\xff\xfe", '{"type":"ping"'])
def test_invalid_json(data: str | bytes) -> None:
    err = _reject(_Raw(data))
    assert "JSON" in err.message


@pytest.mark.parametrize("obj", [[], [{"type": "ping"}], "ping", 1, None, True])
def test_not_an_object(obj: Any) -> None:
    err = _reject(obj)
    assert "object" in err.message


@pytest.mark.parametrize("obj", [{}, {"type": None}, {"type": 1}, {"type": ["ping"]}])
def test_missing_or_non_string_type(obj: Any) -> None:
    err = _reject(obj)
    assert "type" in err.message


@pytest.mark.parametrize("kind", ["pong", "envelope", "ready", "", "PING", "x" * 500])
def test_unknown_type(kind: str) -> None:
    err = _reject({"type": kind}, ErrorCode.UNKNOWN_TYPE)
    assert "unknown frame type" in err.message
    assert "ping" in err.message  # names the expected types
    assert len(err.message) < 200  # a long type is cut, not echoed whole


# Valid type, malformed fields ------------------------------------------------------------------


AUTH = {"type": "auth", "account": ACCOUNT, "device": 1, "password": "pw"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account": "not-a-uuid"}, "account"),
        ({"account": ACCOUNT.upper()}, "account"),
        ({"device": 0}, "device"),
        ({"device": 2**31}, "device"),
        ({"device": "1"}, "device"),  # strict: no string coercion
        ({"device": 1.0}, "device"),
        ({"device": True}, "device"),
        ({"password": ""}, "password"),
        ({"password": "x" * 257}, "password"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_auth_frame(change: dict[str, Any], field: str) -> None:
    err = _reject({**AUTH, **change})
    assert field in err.message
    assert err.details["frame_type"] == "auth"
    assert err.details["ref"] is None  # auth frames carry no id


@pytest.mark.parametrize("missing", ["account", "device", "password"])
def test_auth_missing_field(missing: str) -> None:
    obj = {k: v for k, v in AUTH.items() if k != missing}
    err = _reject(obj)
    assert missing in err.message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"destinations": [_dest(account="nobody")]}, "account"),
        ({"destinations": []}, "destinations"),
        (
            {"destinations": [_dest(account=a) for a in _accounts(f.MAX_DESTINATIONS + 1)]},
            "destinations",
        ),
        ({"destinations": [_dest(), _dest()]}, "each account may appear once"),
        ({"destinations": [{"account": ACCOUNT, "devices": []}]}, "devices"),
        (
            {
                "destinations": [
                    _dest(*[_msg(i) for i in range(1, f.MAX_DEVICES_PER_DESTINATION + 2)])
                ]
            },
            "devices",
        ),
        ({"destinations": [{"account": ACCOUNT}]}, "devices"),
        ({"destinations": [{**_dest(), "extra": 1}]}, "extra"),
        ({"messages": [_msg(1), _msg(1)]}, "each device may appear once"),
        ({"messages": [_msg(body="")]}, "body"),
        ({"messages": [_msg(body="not base64!")]}, "body"),
        ({"messages": [_msg(body="abcde")]}, "body"),  # impossible length
        ({"messages": [_msg(kind=256)]}, "kind"),
        ({"messages": [_msg(kind=-1)]}, "kind"),
        ({"messages": [{"device": 1, "registration": 1, "kind": 1}]}, "both kind and body"),
        ({"messages": [{"device": 1, "registration": 1, "body": BODY}]}, "both kind and body"),
        ({"messages": [{"device": 1, "registration": 1, "kind": None, "body": None}]}, "kind"),
        ({"messages": [{"device": 2, "registration": 1}]}, "needs the send's shared body"),
        ({"shared": {"kind": 2, "body": BODY}}, "no device uses it"),
        (
            {"messages": [{"device": 2, "registration": 1}], "shared": {"kind": 256, "body": BODY}},
            "kind",
        ),
        (
            {"messages": [{"device": 2, "registration": 1}], "shared": {"kind": 2, "body": ""}},
            "body",
        ),
        ({"messages": [{"device": 2, "registration": 1}], "shared": {"kind": 2}}, "body"),
        ({"messages": [_msg(registration=-1)]}, "registration"),
        ({"messages": [_msg(registration=2**32)]}, "registration"),
        ({"messages": [_msg(device=0)]}, "device"),
        ({"messages": [_msg(extra=1)]}, "extra"),
        ({"to": ACCOUNT}, "to"),  # the old form is gone
        ({"ephemeral": "yes"}, "ephemeral"),
        ({"destinations": "nope"}, "destinations"),
    ],
)
def test_bad_send_frame_keeps_ref(change: dict[str, Any], field: str) -> None:
    change = dict(change)
    messages = change.pop("messages", None)
    err = _reject(_send(messages, **change))
    assert field in err.message
    assert err.details == {"ref": "msg_1-A", "frame_type": "send"}
    assert err.to_dict()["ref"] == "msg_1-A"


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 65, "sl/ash", "ü"])
def test_send_frame_bad_id(bad_id: str) -> None:
    err = _reject(_send(id=bad_id))
    assert "id" in err.message
    # The ref echoes a string id that is short enough to be useful, else nothing.
    assert err.details["ref"] == (bad_id if len(bad_id) <= 64 else None)


@pytest.mark.parametrize("bad_id", [7, None, ["a"]])
def test_send_frame_non_string_id_has_no_ref(bad_id: Any) -> None:
    err = _reject(_send(id=bad_id))
    assert err.details["ref"] is None


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "ack"},
        {"type": "ack", "ids": []},
        {"type": "ack", "ids": [0]},
        {"type": "ack", "ids": [-5]},
        {"type": "ack", "ids": ["1"]},
        {"type": "ack", "ids": list(range(1, f.MAX_ACK_IDS + 2))},
        {"type": "ack", "ids": 3},
        {"type": "ack", "ids": [1], "id": "x"},
    ],
)
def test_bad_ack_frame(obj: dict[str, Any]) -> None:
    err = _reject(obj)
    assert err.details["frame_type"] == "ack"


@pytest.mark.parametrize("obj", [{"type": "ping", "n": "1"}, {"type": "ping", "n": 1.5}])
def test_bad_ping_frame(obj: dict[str, Any]) -> None:
    err = _reject(obj)
    assert "n" in err.message


def test_error_message_lists_at_most_three_problems() -> None:
    obj = {"type": "auth", "account": "x", "device": 0, "password": "", "a": 1, "b": 2}
    err = _reject(obj)
    assert err.message.count(";") <= 2


# Server frame constructors ---------------------------------------------------------------------


def test_server_frames() -> None:
    assert f.ready(ACCOUNT, 1, 5, 9) == {  # validated: a real account id
        "type": "ready",
        "account": ACCOUNT,
        "device": 1,
        "server_time": 5,
        "one_time_keys": 9,
    }
    assert f.sent("c", 3) == {"type": "sent", "id": "c", "ts": 3}
    assert f.envelope(1, "s", 2, 3, 0, "b") == {
        "type": "envelope",
        "id": 1,
        "from": "s",
        "from_device": 2,
        "ts": 3,
        "kind": 0,
        "body": "b",
    }
    err = ProtocolError(ErrorCode.RATE_LIMITED, "slow down", retry_after=3)
    assert f.error(err) == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow down",
        "retry_after": 3,
    }
    assert f.keys_low(4) == {"type": "keys_low", "count": 4}
    assert f.drained() == {"type": "drained"}
    assert f.pong(None) == {"type": "pong", "n": None}


# Integer bounds (issue 6): every integer has a range, and out of range is bad_frame ------------


@pytest.mark.parametrize("kind", ["ack", "reject"])
@pytest.mark.parametrize("bad", [2**63, 2**64, 2**64 + 1, 10**30, -1, -(2**63) - 1])
def test_envelope_ids_out_of_range(kind: str, bad: int) -> None:
    obj: dict[str, Any] = {"type": kind, "ids": [1, bad]}
    if kind == "reject":
        obj["reason"] = "malformed"
    err = _reject(obj)
    assert err.details["frame_type"] == kind


@pytest.mark.parametrize("kind", ["ack", "reject"])
def test_envelope_ids_at_the_bound(kind: str) -> None:
    obj: dict[str, Any] = {"type": kind, "ids": [1, f.MAX_ENVELOPE_ID]}
    if kind == "reject":
        obj["reason"] = "too_large"
    frame = _parse(obj)
    assert isinstance(frame, f.AckFrame | f.RejectFrame)
    assert frame.ids == [1, 2**63 - 1]


@pytest.mark.parametrize("n", [-1, f.MAX_PING_N + 1, 2**63, 2**64])
def test_ping_n_out_of_range(n: int) -> None:
    assert _reject({"type": "ping", "n": n}).details["frame_type"] == "ping"


def test_ping_n_at_the_bound() -> None:
    frame = _parse({"type": "ping", "n": f.MAX_PING_N})
    assert isinstance(frame, f.PingFrame) and frame.n == 2**53 - 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"device": 2**31}, "device"),
        ({"device": 2**63}, "device"),
        ({"registration": 2**32}, "registration"),
        ({"registration": -1}, "registration"),
        ({"kind": 256}, "kind"),
        ({"kind": 2**64}, "kind"),
    ],
)
def test_send_integers_out_of_range(change: dict[str, Any], field: str) -> None:
    err = _reject(_send(messages=[_msg(**change)]))
    assert field in err.message and err.details["ref"] == "msg_1-A"


@pytest.mark.parametrize("device", [0, 2**31, 2**63, 2**64])
def test_auth_device_out_of_range(device: int) -> None:
    _reject({"type": "auth", "account": ACCOUNT, "device": device, "password": "secret"})


# The reject frame ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["too_large", "malformed", "unprocessable"])
def test_reject_frame(reason: str) -> None:
    frame = _parse({"type": "reject", "ids": [3, 4], "reason": reason})
    assert isinstance(frame, f.RejectFrame)
    assert (frame.ids, frame.reason) == ([3, 4], reason)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "reject", "ids": [1]},
        {"type": "reject", "ids": [1], "reason": "bored"},
        {"type": "reject", "ids": [], "reason": "malformed"},
        {"type": "reject", "ids": [0], "reason": "malformed"},
        {"type": "reject", "ids": list(range(1, f.MAX_ACK_IDS + 2)), "reason": "malformed"},
        {"type": "reject", "ids": [1], "reason": "malformed", "extra": 1},
    ],
)
def test_bad_reject_frame(obj: dict[str, Any]) -> None:
    assert _reject(obj).details["frame_type"] == "reject"


def test_envelope_too_large_marker() -> None:
    assert f.envelope_too_large(9, "s", 2, 3, 5_000_000) == {
        "type": "envelope",
        "id": 9,
        "from": "s",
        "from_device": 2,
        "ts": 3,
        "too_large": True,
        "size": 5_000_000,
    }
