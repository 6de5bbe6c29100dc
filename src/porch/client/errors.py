"""Every error the SDK raises: one tree, each with a stable code (httpx-style: one module)."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base of SDK errors. `code` is stable; `str(error)` is for people."""

    code = "client_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details


class ServerError(ClientError):
    """The server refused a request; code is the server's error code (docs/protocol.md)."""

    def __init__(self, code: str, message: str, status: int | None = None, **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.status = status


class ServerUnreachable(ClientError):
    code = "unreachable"


class NotRegistered(ClientError):
    code = "not_registered"


class RecipientNotFound(ClientError):
    code = "not_found"


class IdentityError(ClientError):
    """A key from the directory does not verify against the account's master key."""

    code = "bad_identity"


class SendFailed(ClientError):
    """The server refused a message for good (not a transient failure)."""

    code = "send_failed"


class Timeout(ClientError):
    code = "timeout"
