"""Logging an unexpected exception without its message.

A driver's error text can quote the values it was given: asyncpg's DataError names the query
argument it could not encode, which may be a ciphertext body or a password hash. Porch never
logs payloads, keys or secrets (docs/security.md), so failures are logged by type and
traceback frames (where in the code), never by str(exc).
"""

from __future__ import annotations

import logging
import traceback


def log_failure(log: logging.Logger, message: str, *args: object, exc: BaseException) -> None:
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(message + " (%s)\n%s", *args, type(exc).__name__, frames.rstrip())


def reason(exc: BaseException) -> str:
    """What a log line may say of a failure: its stable code, else its type. Never its text,
    which can quote what the server or a peer sent (a hostile server's message, key bytes)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else type(exc).__name__
