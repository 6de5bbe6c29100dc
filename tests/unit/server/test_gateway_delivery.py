"""envelope_batches: backlogs cut by count and bytes, never past MAX_SERVER_FRAME_BYTES."""

from __future__ import annotations

import orjson

from porch.protocol import frames as f
from porch.protocol.codec import dumps
from porch.server.domain import Envelope
from porch.server.gateway.delivery import encode_envelope, envelope_batches

ALICE = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
BOB = "1f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


def _env(envelope_id: int, body_len: int, sender: str = ALICE) -> Envelope:
    return Envelope(envelope_id, BOB, 1, sender, 1, 1_700_000_000_000, 1, "A" * body_len)


def _notice(e: Envelope) -> bytes:
    """What the gateway's encoder does: the envelope, or a too_large notice if it cannot fit."""
    data = encode_envelope(e)
    if len(data) <= f.MAX_ENVELOPE_BYTES:
        return data
    return dumps(f.envelope_too_large(e.id, e.sender_account, e.sender_device, e.ts, len(data)))


def _ids(frames: list[bytes]) -> list[int]:
    return [item["id"] for data in frames for item in orjson.loads(data)["items"]]


def test_small_envelopes_go_64_to_a_frame_as_before() -> None:
    chosen = [_env(i, 200) for i in range(1, 257)]
    frames = envelope_batches(chosen, _notice)
    assert [len(orjson.loads(d)["items"]) for d in frames] == [64] * 4
    assert _ids(frames) == list(range(1, 257))
    first = orjson.loads(frames[0])["items"][0]
    assert first == f.envelope(1, ALICE, 1, 1_700_000_000_000, 1, "A" * 200)


def test_a_poison_backlog_is_cut_by_bytes() -> None:
    # Issue 6: twenty ~250 KB envelopes used to make one ~5 MB frame.
    chosen = [_env(i, 249_334) for i in range(1, 21)] + [_env(i, 100) for i in range(21, 26)]
    frames = envelope_batches(chosen, _notice)
    assert all(len(d) <= f.MAX_SERVER_FRAME_BYTES for d in frames)
    assert _ids(frames) == list(range(1, 26))
    assert len(frames) == 5


def test_an_envelope_that_cannot_fit_becomes_a_notice_and_the_rest_flow() -> None:
    chosen = [_env(1, 100), _env(2, 5 << 20), _env(3, 100)]
    frames = envelope_batches(chosen, _notice)
    items = [item for d in frames for item in orjson.loads(d)["items"]]
    assert [i["id"] for i in items] == [1, 2, 3]
    assert items[1]["too_large"] is True and "body" not in items[1]
    assert items[0]["body"] == items[2]["body"] == "A" * 100
    assert all(len(d) <= f.MAX_SERVER_FRAME_BYTES for d in frames)


def test_a_group_whose_estimate_fits_but_whose_encoding_does_not_is_packed() -> None:
    # Bodies stored with characters JSON must escape: twice the bytes the estimate counts.
    chosen = [Envelope(i, BOB, 1, ALICE, 1, 1, 1, '"' * 100_000) for i in range(1, 10)]
    frames = envelope_batches(chosen, _notice)
    assert len(frames) > 1
    assert all(len(d) <= f.MAX_SERVER_FRAME_BYTES for d in frames)
    assert _ids(frames) == list(range(1, 10))


def test_encoded_envelopes_are_the_frames_bytes_whatever_came_before() -> None:
    """The tail kept from the last envelope (a group message's devices share it) never leaks
    into another: every field of the next one differs in turn, and ids of every width."""
    base = Envelope(1, BOB, 1, ALICE, 1, 1_700_000_000_000, 1, "QUFB" * 10)
    variants = [
        base,
        Envelope(2, BOB, 2, ALICE, 1, 1_700_000_000_000, 1, "QUFB" * 10),  # same tail
        Envelope(9_223_372_036_854_775_807, BOB, 3, ALICE, 1, 1_700_000_000_000, 1, "QUFB" * 10),
        Envelope(4, BOB, 1, BOB, 1, 1_700_000_000_000, 1, "QUFB" * 10),  # another sender
        Envelope(5, BOB, 1, BOB, 7, 1_700_000_000_000, 1, "QUFB" * 10),  # sender's device
        Envelope(6, BOB, 1, BOB, 7, 1_700_000_000_001, 1, "QUFB" * 10),  # ts
        Envelope(7, BOB, 1, BOB, 7, 1_700_000_000_001, 2, "QUFB" * 10),  # kind
        Envelope(8, BOB, 1, BOB, 7, 1_700_000_000_001, 2, "QUFC" * 10),  # body, same length
        Envelope.online_only(BOB, 1, BOB, 7, 1_700_000_000_001, 2, "QUFC" * 10),  # id 0
        base,
    ]
    for e in variants:
        expected = f.envelope(e.wire_id, e.sender_account, e.sender_device, e.ts, e.kind, e.body)
        assert encode_envelope(e) == dumps(expected)
