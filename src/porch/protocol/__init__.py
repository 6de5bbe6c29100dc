"""Wire protocol: frames, codecs and error codes. Plain data, no I/O (see docs/protocol.md)."""

from porch.protocol.errors import ErrorCode, ProtocolError

PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "ErrorCode", "ProtocolError"]
