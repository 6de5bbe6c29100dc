"""The frame size the server promises clients, and batching envelopes by count and bytes."""

from __future__ import annotations

import orjson
import pytest

from porch.bench import raw
from porch.client.transport import MAX_RECEIVE_BYTES, NetworkTransport
from porch.protocol import frames as f
from porch.protocol.codec import dumps
from porch.server.settings import Settings

ACCOUNT = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


def _item(envelope_id: int, body_len: int) -> bytes:
    return dumps(f.envelope(envelope_id, ACCOUNT, 1, 1_700_000_000_000, 1, "A" * body_len))


def test_the_largest_accepted_send_gives_an_envelope_that_fits() -> None:
    # A send frame of exactly the largest allowed client frame, all of it one body.
    skeleton = {
        "type": "send",
        "id": "x",
        "destinations": [{"account": ACCOUNT, "devices": [{"device": 1, "registration": 0}]}],
        "shared": {"kind": 2, "body": ""},
    }
    body_len = f.MAX_CLIENT_FRAME_BYTES - len(dumps(skeleton))
    frame = dict(skeleton, shared={"kind": 2, "body": "A" * body_len})
    assert len(dumps(frame)) == f.MAX_CLIENT_FRAME_BYTES
    # Every field of the envelope at its widest.
    widest = dumps(
        f.envelope(f.MAX_ENVELOPE_ID, ACCOUNT, f.MAX_DEVICE_ID, 2**63 - 1, 1, "A" * body_len)
    )
    assert len(widest) <= f.MAX_ENVELOPE_BYTES
    (packed,) = f.pack_envelopes([widest])
    assert len(packed) <= f.MAX_SERVER_FRAME_BYTES


def test_the_inbound_limit_cannot_exceed_what_fits_in_a_server_frame() -> None:
    assert Settings(max_frame_bytes=f.MAX_CLIENT_FRAME_BYTES).max_frame_bytes == 1 << 20
    with pytest.raises(ValueError, match="max_frame_bytes"):
        Settings(max_frame_bytes=f.MAX_CLIENT_FRAME_BYTES + 1)


def test_client_limits_follow_from_the_promise() -> None:
    assert MAX_RECEIVE_BYTES > f.MAX_SERVER_FRAME_BYTES
    assert NetworkTransport()._max_size == MAX_RECEIVE_BYTES
    assert raw.MAX_RECEIVE_BYTES == MAX_RECEIVE_BYTES


def test_pack_is_the_same_json_as_the_envelopes_frame() -> None:
    items = [_item(i, 10) for i in range(1, 4)]
    (packed,) = f.pack_envelopes(items)
    assert packed == dumps(f.envelopes([orjson.loads(i) for i in items]))
    assert [e["id"] for e in orjson.loads(packed)["items"]] == [1, 2, 3]


def test_pack_cuts_by_count() -> None:
    items = [_item(i, 10) for i in range(1, 131)]
    frames = f.pack_envelopes(items)
    assert [len(orjson.loads(p)["items"]) for p in frames] == [64, 64, 2]


def test_pack_cuts_by_bytes_and_keeps_the_order() -> None:
    # The poison backlog of issue 6: twenty envelopes of ~250 KB, then five small ones.
    items = [_item(i, 250_000) for i in range(1, 21)] + [_item(i, 100) for i in range(21, 26)]
    frames = f.pack_envelopes(items)
    assert all(len(p) <= f.MAX_SERVER_FRAME_BYTES for p in frames)
    ids = [e["id"] for p in frames for e in orjson.loads(p)["items"]]
    assert ids == list(range(1, 26))
    assert len(frames) == 5  # four of ~250 KB fit in one frame, so 20 take five


def test_pack_fills_a_frame_to_exactly_the_limit() -> None:
    one = _item(1, 10)
    limit = 2 + len(b'{"type":"envelopes","items":[]}') + 3 * len(one)  # 3 items, 2 commas
    assert len(f.pack_envelopes([one] * 3, max_bytes=limit)) == 1
    assert len(f.pack_envelopes([one] * 3, max_bytes=limit - 1)) == 2


def test_pack_refuses_an_item_that_cannot_fit() -> None:
    too_big = b"x" * (f.MAX_ENVELOPE_BYTES + 1)
    with pytest.raises(ValueError, match="cannot fit"):
        f.pack_envelopes([_item(1, 10), too_big])
    assert len(f.pack_envelopes([b"x" * f.MAX_ENVELOPE_BYTES])[0]) == f.MAX_SERVER_FRAME_BYTES


def test_pack_nothing() -> None:
    assert f.pack_envelopes([]) == []
