"""docs/protocol.schema.json: up to date with the models, and it accepts and refuses the same
frames they do (validated with the `jsonschema` package, as a browser toolchain would)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from porch.protocol import schema as protocol_schema
from porch.protocol import server_frames as sf
from porch.protocol.client_frames import parse_client_frame
from porch.protocol.close_codes import CloseCode
from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError

from .samples import ACCOUNT, BODY, client_samples, server_samples
from .test_server_frames import out_of_bounds_frames

SCHEMA_PATH = Path(__file__).parents[3] / "docs" / "protocol.schema.json"
SCHEMA: dict[str, Any] = orjson.loads(SCHEMA_PATH.read_bytes())


def _validator(definition: str) -> Draft202012Validator:
    root = {k: v for k, v in SCHEMA.items() if k != "oneOf"}
    return Draft202012Validator({**root, "$ref": f"#/$defs/{definition}"})


CLIENT = _validator("ClientFrame")
SERVER = _validator("ServerFrame")
ANY = Draft202012Validator(SCHEMA)


def test_the_checked_in_schema_is_a_fresh_export() -> None:
    fresh = protocol_schema.render()
    assert SCHEMA_PATH.read_text(encoding="utf-8") == fresh, (
        f"docs/protocol.schema.json is out of date: run `{protocol_schema.REGENERATE}` "
        "from the repository root and commit the result"
    )


def test_the_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "protocol.schema.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert protocol_schema.main([str(stale), "--check"]) == 1
    assert protocol_schema.main([str(stale)]) == 0
    assert protocol_schema.main([str(stale), "--check"]) == 0


def _matching_defs(frame: dict[str, Any]) -> list[str]:
    return [
        name
        for name in SCHEMA["$defs"]
        if name.endswith("Frame") and name not in ("ClientFrame", "ServerFrame")
        if _validator(name).is_valid(frame)
    ]


@pytest.mark.parametrize("name", list(server_samples()))
def test_server_frames_from_the_builders_and_models_fit_the_schema(name: str) -> None:
    frame = server_samples()[name]
    SERVER.validate(frame)
    ANY.validate(frame)
    assert not CLIENT.is_valid(frame)
    model = sf.parse_server_frame(dumps(frame))
    assert not isinstance(model, sf.UnknownFrame)
    assert _matching_defs(model.model_dump(mode="json")) == [type(model).__name__]


@pytest.mark.parametrize("name", list(client_samples()))
def test_client_frames_from_the_builders_and_models_fit_the_schema(name: str) -> None:
    frame = client_samples()[name]
    CLIENT.validate(frame)
    ANY.validate(frame)
    assert not SERVER.is_valid(frame)
    model = parse_client_frame(dumps(frame))
    assert _matching_defs(model.model_dump(mode="json")) == [type(model).__name__]


def test_every_frame_definition_has_a_sample() -> None:
    frames = [*server_samples().values(), *client_samples().values()]
    used = {name for frame in frames for name in _matching_defs(frame)}
    defined = {n for n in SCHEMA["$defs"] if n.endswith("Frame")} - {"ClientFrame", "ServerFrame"}
    assert used == defined


@pytest.mark.parametrize(("name", "frame"), out_of_bounds_frames())
def test_the_schema_refuses_out_of_bound_server_frames(name: str, frame: dict[str, Any]) -> None:
    assert not SERVER.is_valid(frame)


def _msg(**kw: Any) -> dict[str, Any]:
    return {"device": 1, "registration": 7, "kind": 0, "body": BODY, **kw}


AUTH = {"type": "auth", "account": ACCOUNT, "device": 1, "password": "pw"}


def _to(*devices: dict[str, Any], account: str = ACCOUNT) -> dict[str, Any]:
    return {"destinations": [{"account": account, "devices": list(devices)}]}


SEND = {"type": "send", "id": "m1", **_to(_msg())}
BAD_CLIENT_FRAMES: list[dict[str, Any]] = [
    {**AUTH, "device": 0},
    {**AUTH, "device": 2**31},
    {**AUTH, "password": ""},
    {**AUTH, "password": "p" * 257},
    {**AUTH, "batch": 1},
    {**AUTH, "extra": 1},
    {**SEND, "id": "x" * 65},
    {**SEND, "to": ACCOUNT},
    {**SEND, **_to(_msg(), account="ACCOUNT")},
    {**SEND, "destinations": []},
    {**SEND, "destinations": [_to(_msg())["destinations"][0]] * 1001},
    {**SEND, **_to()},
    {**SEND, **_to(*[_msg(device=i) for i in range(1, 66)])},
    {**SEND, **_to(_msg(registration=2**32))},
    {**SEND, **_to(_msg(registration=-1))},
    {**SEND, **_to(_msg(kind=256))},
    {**SEND, **_to(_msg(body=""))},
    {**SEND, **_to(_msg(body="no spaces in base64"))},
    {**SEND, "shared": {"kind": 256, "body": BODY}},
    {**SEND, "shared": {"kind": 2}},
    {"type": "ack", "ids": []},
    {"type": "ack", "ids": [0]},
    {"type": "ack", "ids": [2**63]},
    {"type": "ack", "ids": list(range(1, 1002))},
    {"type": "reject", "ids": [1], "reason": "bored"},
    {"type": "ping", "n": -1},
    {"type": "ping", "n": 2**53},
    {"type": "teleport"},
]


@pytest.mark.parametrize("frame", BAD_CLIENT_FRAMES, ids=range(len(BAD_CLIENT_FRAMES)))
def test_models_and_schema_refuse_the_same_client_frames(frame: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_client_frame(dumps(frame))
    assert not CLIENT.is_valid(frame)


def test_codes_are_exported() -> None:
    assert SCHEMA["$defs"]["ErrorCode"]["enum"] == [c.value for c in ErrorCode]
    close = {c["const"]: c["title"] for c in SCHEMA["$defs"]["CloseCode"]["oneOf"]}
    assert close == {int(c): c.name for c in CloseCode}
    assert SCHEMA["x-porch-limits"]["max_server_frame_bytes"] == sf.MAX_SERVER_FRAME_BYTES
