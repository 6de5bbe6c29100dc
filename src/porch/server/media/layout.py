"""The arithmetic of an upload: blob size limits, part counts and part spans (spec §1, §6).

Pure functions shared by the service and both backends, so a part's offset and length are
computed in one place and every side agrees on them.
"""

from __future__ import annotations

import math
import re

MEDIA_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 random bytes, base64url, no padding
MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload
MIN_S3_PART_BYTES = 5 << 20  # S3's minimum for every part but the last
MiB = 1 << 20


def valid_media_id(media_id: str) -> bool:
    return MEDIA_ID_RE.fullmatch(media_id) is not None


def choose_part_size(size: int, preferred: int) -> int:
    """The configured part size, raised (to whole MiB) when `size` would need more than
    MAX_PARTS parts."""
    if math.ceil(size / preferred) <= MAX_PARTS:
        return preferred
    return math.ceil(size / MAX_PARTS / MiB) * MiB


def part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def part_span(size: int, part_size: int, n: int) -> tuple[int, int]:
    """(offset, length) of part n (1-based); the last part may be shorter."""
    if not 1 <= n <= part_count(size, part_size):
        raise ValueError(f"part {n} is out of range")
    offset = (n - 1) * part_size
    return offset, min(part_size, size - offset)


def in_units(size: int) -> str:
    """A byte count as people read it: "812 bytes", "3.4 MB", "1.2 GB" (decimal units)."""
    if size < 1000:
        return f"{size} bytes"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)):
        if size < scale * 1000 or unit == "TB":
            value = size / scale
            return f"{value:.1f} {unit}".replace(".0 ", " ")
    raise AssertionError("unreachable")
