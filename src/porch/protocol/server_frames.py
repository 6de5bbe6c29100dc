"""Server -> client frames (docs/protocol.md, "Server frames"), built as plain dicts by the
small constructors below, because they are produced on the hot path."""

from __future__ import annotations

from typing import Any

from porch.protocol.errors import ProtocolError
from porch.protocol.fields import ENVELOPES_PER_FRAME, MAX_SERVER_FRAME_BYTES

_BATCH_HEAD = b'{"type":"envelopes","items":['
_BATCH_TAIL = b"]}"
# The largest encoded envelope that can go out, alone or as the one item of a batch.
MAX_ENVELOPE_BYTES = MAX_SERVER_FRAME_BYTES - len(_BATCH_HEAD) - len(_BATCH_TAIL)


# Builders: what the gateway and the services send ------------------------------------------


def ready(account: str, device: int, server_time: int, one_time_keys: int) -> dict[str, Any]:
    return {
        "type": "ready",
        "account": account,
        "device": device,
        "server_time": server_time,
        "one_time_keys": one_time_keys,
    }


def sent(client_id: str, ts: int) -> dict[str, Any]:
    return {"type": "sent", "id": client_id, "ts": ts}


def envelope(
    envelope_id: int, sender: str, sender_device: int, ts: int, kind: int, body: str
) -> dict[str, Any]:
    return {
        "type": "envelope",
        "id": envelope_id,
        "from": sender,
        "from_device": sender_device,
        "ts": ts,
        "kind": kind,
        "body": body,
    }


def envelope_too_large(
    envelope_id: int, sender: str, sender_device: int, ts: int, size: int
) -> dict[str, Any]:
    """Sent in place of an envelope that cannot fit in MAX_SERVER_FRAME_BYTES: who sent it and
    when, without kind and body. The client rejects (or acknowledges) it and the queue moves."""
    return {
        "type": "envelope",
        "id": envelope_id,
        "from": sender,
        "from_device": sender_device,
        "ts": ts,
        "too_large": True,
        "size": size,
    }


def envelopes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several envelope frames in one, for clients that asked for batches (auth.batch)."""
    return {"type": "envelopes", "items": items}


def pack_envelopes(
    items: list[bytes],
    max_items: int = ENVELOPES_PER_FRAME,
    max_bytes: int = MAX_SERVER_FRAME_BYTES,
) -> list[bytes]:
    """Encoded envelope frames -> encoded `envelopes` frames, in order, each with at most
    max_items items and max_bytes bytes (the same bytes as dumps(envelopes(...)) would give).
    Every item must fit on its own (len <= MAX_ENVELOPE_BYTES for the default max_bytes)."""
    fixed = len(_BATCH_HEAD) + len(_BATCH_TAIL)
    frames: list[bytes] = []
    chunk: list[bytes] = []
    size = fixed
    for item in items:
        if fixed + len(item) > max_bytes:
            raise ValueError(f"an envelope of {len(item)} bytes cannot fit in {max_bytes}")
        extra = len(item) + (1 if chunk else 0)  # the comma between items
        if chunk and (len(chunk) >= max_items or size + extra > max_bytes):
            frames.append(_BATCH_HEAD + b",".join(chunk) + _BATCH_TAIL)
            chunk, size, extra = [], fixed, len(item)
        chunk.append(item)
        size += extra
    if chunk:
        frames.append(_BATCH_HEAD + b",".join(chunk) + _BATCH_TAIL)
    return frames


def error(exc: ProtocolError) -> dict[str, Any]:
    return {"type": "error", **exc.to_dict()}


def keys_low(count: int) -> dict[str, Any]:
    return {"type": "keys_low", "count": count}


def drained() -> dict[str, Any]:
    return {"type": "drained"}


def pong(n: int | None) -> dict[str, Any]:
    return {"type": "pong", "n": n}
