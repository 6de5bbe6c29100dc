"""read_ack: which frames the WebSocket layer's callback may take without the reader."""

from __future__ import annotations

from porch.protocol.client_frames import ack
from porch.protocol.codec import dumps
from porch.server.gateway.acks_now import ACK_HEAD, frame_handler_slot, read_ack


def test_an_ack_as_the_clients_encode_it_is_read() -> None:
    data = dumps(ack([3, 4]))
    assert data.startswith(ACK_HEAD)
    assert read_ack(data, 1 << 20) == [3, 4]


def test_everything_else_is_left_to_the_reader() -> None:
    assert read_ack(b'{"type":"ping","n":1}', 1 << 20) is None
    assert read_ack(b'{"ids":[1],"type":"ack"}', 1 << 20) is None  # valid, other key order
    assert read_ack(b'{"type":"ack","ids":"x"}', 1 << 20) is None  # malformed: its error
    assert read_ack(b'{"type":"ack","ids":[1],"extra":1}', 1 << 20) is None
    assert read_ack(b'{"type":"ack","ids":[1]', 1 << 20) is None  # not JSON
    assert read_ack(dumps(ack([1])), 5) is None  # over the frame limit: its error


def test_the_slot_is_found_only_where_the_layer_offers_it() -> None:
    seen: list[object] = []
    assert frame_handler_slot({"extensions": {"porch.on_frame": seen.append}}) is not None
    assert frame_handler_slot({"extensions": {}}) is None
    assert frame_handler_slot({}) is None
