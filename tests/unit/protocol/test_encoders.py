"""The builders the hot path sends with write exactly the JSON of their models."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from porch.protocol import server_frames as sf
from porch.protocol.client_frames import parse_client_frame
from porch.protocol.codec import dumps

from .samples import ACCOUNT, client_samples, server_samples


@pytest.mark.parametrize("name", list(server_samples()))
def test_every_server_frame_is_its_models_json(name: str) -> None:
    frame: dict[str, Any] = server_samples()[name]
    model = sf.parse_server_frame(dumps(frame))
    assert not isinstance(model, sf.UnknownFrame)
    assert model.model_dump_json().encode() == dumps(frame)
    assert model.model_dump(mode="json") == frame


def test_every_server_frame_kind_has_a_sample() -> None:
    kinds = {type(sf.parse_server_frame(dumps(s))) for s in server_samples().values()}
    assert kinds == set(sf.SERVER_FRAME_MODELS.values())


@pytest.mark.parametrize("name", list(client_samples()))
def test_every_client_frame_is_its_models_json(name: str) -> None:
    frame = client_samples()[name]
    model = parse_client_frame(dumps(frame))
    assert model.model_dump_json().encode() == dumps(frame)


def test_every_client_frame_kind_has_a_sample() -> None:
    kinds = {orjson.loads(dumps(s))["type"] for s in client_samples().values()}
    assert kinds == {"auth", "send", "ack", "reject", "ping"}


def test_a_built_model_encodes_like_the_builder() -> None:
    # Built from the model's side (by field name, `from_`), not parsed.
    model = sf.EnvelopeFrame(
        type="envelope", id=1, from_=ACCOUNT, from_device=2, ts=3, kind=1, body="AAAA"
    )
    assert model.model_dump_json().encode() == dumps(sf.envelope(1, ACCOUNT, 2, 3, 1, "AAAA"))
