"""Send frames that are too large for the server (issue 8 fix M2-5).

The server refuses a frame above PORCH_MAX_FRAME_BYTES with a `frame_too_large` error that
carries no `ref` (docs/protocol.md, "Errors": it is refused before it is parsed), so nothing
ties it to the outbox item: left alone, the item would stay in flight and go again on every
connection. So the outbox measures each frame before it leaves: one over the protocol's bound,
or over the limit a server has announced in such an error, is failed at once; and when a
ref-less `frame_too_large` arrives, the in-flight frames over its `limit` are failed."""

from __future__ import annotations

from typing import Any

import orjson

from porch.protocol.fields import MAX_CLIENT_FRAME_BYTES

# A text's encoded content past this is refused before it is queued: encrypted (base64, 4/3)
# for a few devices, it fits the server's default frame limit of 256 KiB (docs/protocol.md,
# "Frame size limits"). A 64 KiB text with a caption's worth of attachment pointers fits.
MAX_CONTENT_BYTES = 96 * 1024


def frame_bytes(frame: dict[str, Any]) -> int:
    """What the frame weighs on the wire (the runner sends orjson's encoding)."""
    return len(orjson.dumps(frame))


def over_limit(size: int, limit: int | None) -> bool:
    return size > (MAX_CLIENT_FRAME_BYTES if limit is None else limit)


def too_large_message(size: int, limit: int | None, devices: int) -> str:
    """Why the item failed and what to do, as one sentence (the CLI prints it as is)."""
    bound = MAX_CLIENT_FRAME_BYTES if limit is None else limit
    return (
        f"the message is {size:,} bytes once encrypted for {devices} device"
        f"{'' if devices == 1 else 's'}, more than the server accepts ({bound:,}); it was not"
        " sent: send it again with fewer or smaller attachments or a shorter text"
    )


def announced_limit(frame: dict[str, Any]) -> int | None:
    """The `limit` of a frame_too_large error, if it is a sane number."""
    limit = frame.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        return min(limit, MAX_CLIENT_FRAME_BYTES)
    return None
