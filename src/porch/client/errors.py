"""Every error the SDK raises: one tree, each with a stable code (httpx-style: one module).

    ClientError                 the root; `code` is stable, `str(error)` is for people
      UsageError                bad input from the caller (a malformed number or URL, ...)
        MessageTooLong          a text above the content limit (docs/protocol.md)
      ServerUnreachable         the network: no connection to the server
      Timeout                   the server did not answer in time
      ServerError               the server refused; `code` is the server's (docs/protocol.md)
      ProfileError              the local profile: unreadable, read-only, corrupt, locked
        NotRegistered           no (complete) profile in the directory
      RecipientNotFound         the directory has nobody by that number or name
      IdentityError             keys from the directory do not verify
      SendFailed                the server refused a message for good
      SendPaused                a verified contact's key changed: the message waits, queued
      MediaError                a file to attach cannot be read, or prepared in the work dir
      AttachmentRejected        a downloaded attachment failed its integrity check

Library exceptions (httpx, sqlite3, OSError, porch.crypto) are mapped to these where the SDK
calls the library, so applications catch one tree. Codes never change meaning once released,
like the server's `porch.protocol.errors.ErrorCode`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ClientCode(StrEnum):
    CLIENT_ERROR = "client_error"
    USAGE = "usage"
    MESSAGE_TOO_LONG = "message_too_long"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    PROFILE = "profile"
    PROFILE_READ_ONLY = "profile_read_only"
    PROFILE_CORRUPT = "profile_corrupt"
    PROFILE_LOCKED = "profile_locked"
    NOT_REGISTERED = "not_registered"
    NOT_FOUND = "not_found"
    BAD_IDENTITY = "bad_identity"
    SEND_FAILED = "send_failed"
    SEND_PAUSED = "send_paused"
    REPLACED = "replaced"
    REVOKED = "revoked"
    HTTP_ERROR = "http_error"
    BAD_RESPONSE = "bad_response"  # the server's answer is malformed or out of bounds
    BAD_LINK = "bad_link"  # a group invite link that cannot be used (porch.client.group_links)
    MEDIA_UNREADABLE = "media_unreadable"  # a file to attach is missing, unreadable, a directory
    MEDIA_WORKDIR = "media_workdir"  # the prepared copy of a file to attach cannot be written
    ATTACHMENT_TAMPERED = "attachment_tampered"  # digest or MAC wrong: nothing was saved
    ATTACHMENT_INVALID = "attachment_invalid"  # a pointer no blob can match (size out of range)
    DISK_FULL = "disk_full"
    # Rich messages (porch.client.rich): the message named is not in that conversation, is
    # someone else's, is past the 48-hour window or its edit limit; too many chats to forward
    # to; a disappearing timer out of range.
    MESSAGE_NOT_FOUND = "message_not_found"
    NOT_AUTHOR = "not_author"
    TOO_LATE = "too_late"
    EDIT_LIMIT = "edit_limit"
    FORWARD_LIMIT = "forward_limit"
    BAD_TIMER = "bad_timer"


class ClientError(Exception):
    """Base of SDK errors. `code` is stable; `str(error)` is for people."""

    code: str = ClientCode.CLIENT_ERROR

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details


class UsageError(ClientError):
    """The caller passed something unusable; fixing the input fixes it."""

    code = ClientCode.USAGE


class MessageTooLong(UsageError):
    code = ClientCode.MESSAGE_TOO_LONG


class ServerError(ClientError):
    """The server refused a request; code is the server's error code (docs/protocol.md)."""

    def __init__(self, code: str, message: str, status: int | None = None, **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.status = status


class ServerUnreachable(ClientError):
    code = ClientCode.UNREACHABLE


class Timeout(ClientError):
    code = ClientCode.TIMEOUT


class ProfileError(ClientError):
    """The local profile cannot be used: read-only, locked, corrupt or a wrong passphrase."""

    code = ClientCode.PROFILE


class NotRegistered(ProfileError):
    code = ClientCode.NOT_REGISTERED


class RecipientNotFound(ClientError):
    code = ClientCode.NOT_FOUND


class IdentityError(ClientError):
    """A key from the directory does not verify against the account's master key."""

    code = ClientCode.BAD_IDENTITY


class SendFailed(ClientError):
    """The server refused a message for good (not a transient failure)."""

    code = ClientCode.SEND_FAILED


class SendPaused(ClientError):
    """The recipient's master key is not the one the user verified: the message stays in the
    outbox (state ``paused``) until the new key is verified or accepted (docs/design.md,
    "Verified contacts"). Not a failure: ``details["queued_id"]`` names the waiting item."""

    code = ClientCode.SEND_PAUSED


class MediaError(ClientError):
    """A file to attach cannot be used (porch.client.media_prep): ``media_unreadable`` when it
    is missing, unreadable or a directory, ``media_workdir`` when its stripped copy cannot be
    written. A file that merely fails to decode as an image is sent as a plain file instead."""

    code = ClientCode.MEDIA_UNREADABLE


class AttachmentRejected(ClientError):
    """A downloaded blob failed its length, digest or MAC check (spec §1); nothing was saved."""

    code = ClientCode.ATTACHMENT_TAMPERED
