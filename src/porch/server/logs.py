"""Process-wide logging and file-mode setup for a server process (or a worker of one)."""

from __future__ import annotations

import logging
import os

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
    for name in unknown_settings():
        logging.getLogger("porch.server").warning("ignoring unknown setting %s (a typo?)", name)
