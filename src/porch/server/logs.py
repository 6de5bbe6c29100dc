"""Process-wide logging and file-mode setup for a server process (or a worker of one)."""

from __future__ import annotations

import logging
import os
import re

from porch.server.settings import Settings

# Client-side variables and the test suite's own share the PORCH_ prefix.
_NOT_SERVER = {"PORCH_PROFILE", "PORCH_PASSPHRASE", "PORCH_KEYRING"}


def _drop_connection_lines(record: logging.LogRecord) -> bool:
    """uvicorn logs every WebSocket accept/open/close with the client's address and port:
    metadata Porch does not keep (docs/security.md), so those lines are dropped."""
    message = str(record.msg)
    return not (
        '"WebSocket ' in message or message.startswith(("connection open", "connection closed"))
    )


_SIGNATURE = re.compile(r"(?<=[?&])(sig|X-Amz-Signature)=[^&\s]*", re.IGNORECASE)


def redact_signatures(record: logging.LogRecord) -> bool:
    """Access lines (PORCH_ACCESS_LOG) carry request paths: a signed media URL's signature is
    a capability (docs/security.md), so it is replaced before the line is written."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            _SIGNATURE.sub(r"\1=REDACTED", a) if isinstance(a, str) else a for a in record.args
        )
    return True


def unknown_settings() -> list[str]:
    known = {f"PORCH_{name.upper()}" for name in Settings.model_fields} | _NOT_SERVER
    return sorted(
        k
        for k in os.environ
        if k.startswith("PORCH_") and not k.startswith("PORCH_TEST_") and k not in known
    )


def configure(settings: Settings) -> None:
    # Everything the server writes (database, WAL, SMS outbox) is for the server's user only.
    os.umask(0o077)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("uvicorn.error").addFilter(_drop_connection_lines)
    logging.getLogger("uvicorn.access").addFilter(redact_signatures)
    # httpx logs every outgoing request's URL at INFO: a push endpoint's path is a capability
    # (anyone holding it can push to that browser), so those lines are never written.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in unknown_settings():
        logging.getLogger("porch.server").warning("ignoring unknown setting %s (a typo?)", name)
