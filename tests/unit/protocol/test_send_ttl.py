"""A send's optional `ttl` (spec §7; docs/protocol.md, "Sending"): its bounds on the model and
in the exported schema, and the builder that writes it only when given."""

from __future__ import annotations

import json
from typing import Any

import pytest

from porch.protocol import client_frames as cf
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.fields import MAX_TTL_SECONDS

from .samples import BODY, OTHER
from .test_schema import CLIENT

DEST = cf.destination(OTHER, [cf.device_message(1, 7, 1, BODY)])


def _send(**kw: Any) -> dict[str, Any]:
    return {"type": "send", "id": "ttl_1", "destinations": [DEST], **kw}


@pytest.mark.parametrize("ttl", [1, 60, MAX_TTL_SECONDS])
def test_a_ttl_in_range_is_kept(ttl: int) -> None:
    frame = cf.parse_client_frame(json.dumps(_send(ttl=ttl)))
    assert isinstance(frame, cf.SendFrame)
    assert frame.ttl == ttl
    assert CLIENT.is_valid(_send(ttl=ttl))


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL_SECONDS + 1, 2**63, 2**64, "5", True, 1.5, [1]])
def test_a_ttl_out_of_range_or_not_an_integer_is_a_bad_frame(ttl: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        cf.parse_client_frame(json.dumps(_send(ttl=ttl)))
    err = info.value
    assert err.code == ErrorCode.BAD_FRAME
    assert "ttl" in err.message
    assert err.details == {"ref": "ttl_1", "frame_type": "send"}  # the sender can match it
    assert not CLIENT.is_valid(_send(ttl=ttl))


def test_no_ttl_and_null_both_mean_the_normal_retention() -> None:
    for raw in (_send(), _send(ttl=None)):
        frame = cf.parse_client_frame(json.dumps(raw))
        assert isinstance(frame, cf.SendFrame)
        assert frame.ttl is None
        assert "ttl" not in json.loads(frame.model_dump_json())


def test_the_builder_writes_ttl_only_when_given() -> None:
    assert "ttl" not in cf.send("a", [DEST])
    assert cf.send("a", [DEST], ttl=None) == cf.send("a", [DEST])
    built = cf.send("a", [DEST], ttl=30)
    assert built["ttl"] == 30
    model = cf.parse_client_frame(json.dumps(built))
    assert json.loads(model.model_dump_json()) == built
