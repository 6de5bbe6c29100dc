"""Byte encodings used on the wire (docs/protocol.md, "Encodings").

Binary values travel as base64 with the standard alphabet and no padding, as vodozemac and
Matrix encode keys, so one helper pair serves keys, signatures and ciphertexts alike.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from porch.protocol.errors import ErrorCode, ProtocolError


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode unpadded (or padded) standard base64; raise ValueError on anything else."""
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("invalid base64 length")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"frame is not valid JSON: {exc}") from None
