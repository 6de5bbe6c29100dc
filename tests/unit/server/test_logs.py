"""Access-log lines never carry a signed media URL's signature."""

from __future__ import annotations

import logging

from porch.server.logs import redact_signatures


def test_signatures_in_access_lines_are_redacted() -> None:
    path = "/v1/media/parts/AAAAAAAAAAAAAAAAAAAAAA/1?exp=1700000000000&sig=c2VjcmV0c2lnbmF0dXJl"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "PUT", path, "1.1", 200),
        None,
    )
    assert redact_signatures(record)
    line = record.getMessage()
    assert "c2VjcmV0" not in line
    assert "exp=1700000000000&sig=REDACTED" in line and "/v1/media/parts/" in line
    other = logging.LogRecord("x", logging.INFO, "", 0, "plain %s", ("no query",), None)
    assert redact_signatures(other) and other.getMessage() == "plain no query"
