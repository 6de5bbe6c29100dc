"""The `Range` header of a blob GET (RFC 9110 §14), reduced to what Porch serves: one range.

Starlette's FileResponse answers a malformed Range with a plain-text 400 and an unsatisfiable
one with an empty 416; Porch's errors have one JSON shape (docs/protocol.md, "Errors"). So the
route decides first: a header that does not parse, names another unit or asks for several
ranges is ignored, as RFC 9110 §14.2 allows (the whole blob, 200); a single range that starts
past the end is 416 range_not_satisfiable; a satisfiable one is handed on in canonical form.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DIGITS = 18  # a position of more digits is past any blob: treated as malformed


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def header(self) -> str:
        return f"bytes={self.start}-{self.end - 1}"


class Unsatisfiable:
    """A well-formed single range that selects no byte of the blob."""


UNSATISFIABLE = Unsatisfiable()


def _position(text: str) -> int | None:
    ok = text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS
    return int(text) if ok else None


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """The range to serve of a `size`-byte blob; None: serve it whole (no usable header)."""
    if header is None:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    if not first_text:  # "-N": the last N bytes
        suffix = _position(last_text)
        if suffix is None:
            return None
        return ByteRange(max(size - suffix, 0), size) if suffix > 0 else UNSATISFIABLE
    first = _position(first_text)
    last = _position(last_text) if last_text else None
    if first is None or (last_text and (last is None or last < first)):
        return None  # invalid range-spec (RFC 9110 §14.1.1): the header is ignored
    if first >= size:
        return UNSATISFIABLE
    return ByteRange(first, size if last is None else min(last + 1, size))
