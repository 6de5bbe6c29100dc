"""Stable error codes shared by the HTTP API, the WebSocket gateway and the SDK.

A code never changes meaning once released; clients branch on it. The message is for people.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # Framing and validation
    BAD_FRAME = "bad_frame"
    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    FRAME_TOO_LARGE = "frame_too_large"
    REQUEST_TOO_LARGE = "request_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    # Authentication and authorisation
    AUTH_REQUIRED = "auth_required"
    AUTH_FAILED = "auth_failed"
    FORBIDDEN = "forbidden"
    ALREADY_AUTHENTICATED = "already_authenticated"
    # Registration
    INVALID_PHONE = "invalid_phone"
    CODE_INVALID = "code_invalid"
    CODE_EXPIRED = "code_expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    SESSION_NOT_FOUND = "session_not_found"
    USERNAME_TAKEN = "username_taken"
    INVALID_USERNAME = "invalid_username"
    # Keys
    BAD_SIGNATURE = "bad_signature"
    KEYS_EXIST = "keys_exist"
    MASTER_KEY_MISMATCH = "master_key_mismatch"
    NO_KEYS = "no_keys"
    IDENTITY_KEY_IN_USE = "identity_key_in_use"
    # Linked devices
    TOO_MANY_DEVICES = "too_many_devices"
    CHANNEL_FILLED = "channel_filled"
    STALE_DEVICE_LIST = "stale_device_list"
    # Messaging
    MISMATCHED_DEVICES = "mismatched_devices"
    STALE_DEVICES = "stale_devices"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    # Groups (docs/protocol.md, "Groups")
    REVISION_CONFLICT = "revision_conflict"
    GROUP_FULL = "group_full"
    TOO_MANY_GROUPS = "too_many_groups"
    GROUP_EXISTS = "group_exists"
    LAST_ADMIN = "last_admin"
    # Media (docs/protocol.md, "Media")
    MEDIA_TOO_LARGE = "media_too_large"
    MEDIA_QUOTA = "media_quota"
    MEDIA_PENDING = "media_pending"
    MEDIA_NOT_FOUND = "media_not_found"
    MEDIA_URL_INVALID = "media_url_invalid"
    MEDIA_UPLOAD_DONE = "media_upload_done"
    MEDIA_INCOMPLETE = "media_incomplete"
    MEDIA_BUSY = "media_busy"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    # General
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A request or frame that the receiver refuses, with a stable code and readable message."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, **self.details}
