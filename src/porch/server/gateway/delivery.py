"""Envelopes to frames, within the frame size the server promises (docs/protocol.md, "Frame
size limits"). Plain functions over stored envelopes, so they are tested without a socket."""

from __future__ import annotations

import logging
from collections.abc import Callable

from porch.protocol import frames as f
from porch.protocol.codec import dumps
from porch.server.domain import Envelope
from porch.server.metrics import Metrics

log = logging.getLogger("porch.gateway")

# More than an envelope frame's bytes besides its body and sender: the keys (74), four
# integers of at most 20 digits, and a comma.
ITEM_FIXED_BYTES = 160


# An `envelope` frame is its head, the id, and a tail that holds everything else (sender, ts,
# kind, body: docs/protocol.md, "Server frames"). The devices of one group message get the same
# tail, so it is encoded once per message, not once per device (issue 10, fan-out): the last
# tail is kept, keyed by what it encodes. Same bytes as dumps(f.envelope(...)): checked in
# tests/unit/server/test_gateway_delivery.py.
_HEAD = b'{"type":"envelope","id":'
_last_key: tuple[str, int, int, int, str] | None = None
_last_tail = b""


def encode_envelope(e: Envelope) -> bytes:
    global _last_key, _last_tail
    key = (e.sender_account, e.sender_device, e.ts, e.kind, e.body)
    if key != _last_key:
        whole = dumps(f.envelope(0, e.sender_account, e.sender_device, e.ts, e.kind, e.body))
        if not whole.startswith(_HEAD + b"0,"):  # never, with orjson's key order: still exact
            return dumps(
                f.envelope(e.wire_id, e.sender_account, e.sender_device, e.ts, e.kind, e.body)
            )
        _last_key, _last_tail = key, whole[len(_HEAD) + 1 :]
    return b"%s%d%s" % (_HEAD, e.wire_id, _last_tail)


def deliverable(e: Envelope, metrics: Metrics) -> bytes:
    """The envelope's frame, or a too_large marker if it cannot fit in the frame size the
    protocol promises (it was stored under a larger limit, or by other means)."""
    data = encode_envelope(e)
    if len(data) <= f.MAX_ENVELOPE_BYTES:
        return data
    log.warning("envelope %d of %d bytes is too large to deliver", e.id, len(data))
    metrics.envelopes_too_large.inc()
    return dumps(
        f.envelope_too_large(e.wire_id, e.sender_account, e.sender_device, e.ts, len(data))
    )


def envelope_frames(
    chosen: list[Envelope], batch: bool, metrics: Metrics
) -> list[tuple[str, bytes]]:
    """The frames that carry chosen, in order: `envelopes` frames for a client that asked for
    batches (cut by count and by bytes, so that no frame exceeds MAX_SERVER_FRAME_BYTES,
    docs/protocol.md), one `envelope` frame each otherwise."""
    if batch and len(chosen) > 1:
        encode = lambda e: deliverable(e, metrics)  # noqa: E731
        return [("envelopes", data) for data in envelope_batches(chosen, encode)]
    return [("envelope", deliverable(e, metrics)) for e in chosen]


def envelope_batches(chosen: list[Envelope], encode: Callable[[Envelope], bytes]) -> list[bytes]:
    """`envelopes` frames for chosen, in order, each of at most ENVELOPES_PER_FRAME items and
    MAX_SERVER_FRAME_BYTES bytes. encode turns one envelope into its frame, or into a small
    too_large notice when that frame could not fit (f.MAX_ENVELOPE_BYTES)."""
    frames: list[bytes] = []
    envelope = f.envelope
    for i in range(0, len(chosen), f.ENVELOPES_PER_FRAME):
        group = chosen[i : i + f.ENVELOPES_PER_FRAME]
        # Fast path (most backlogs): a group that should fit as a whole is one encoding call,
        # checked after. Otherwise each envelope is encoded and checked alone, then packed by
        # bytes; the estimate keeps a group of large ones from being encoded twice. Items and
        # estimate in one pass (a drain's frames: docs/performance.md, "Drain (2026-12-02)").
        estimate = ITEM_FIXED_BYTES * len(group)
        items = []
        for e in group:
            estimate += len(e.body) + len(e.sender_account)
            wire_id = 0 if e.ephemeral else e.id  # e.wire_id, without the property's call
            items.append(envelope(wire_id, e.sender_account, e.sender_device, e.ts, e.kind, e.body))
        if estimate <= f.MAX_SERVER_FRAME_BYTES:
            data = dumps(f.envelopes(items))
            if len(data) <= f.MAX_SERVER_FRAME_BYTES:
                frames.append(data)
                continue
        frames.extend(f.pack_envelopes([encode(e) for e in group]))
    return frames
