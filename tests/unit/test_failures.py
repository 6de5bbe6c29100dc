"""porch.failures: an unexpected failure is logged by type and place, never by its text."""

from __future__ import annotations

import logging

import pytest

from porch.failures import log_failure


def test_a_failure_is_logged_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("porch.test")
    secret = "SECRET" + "-CIPHERTEXT"  # built, so the traceback's source line does not hold it
    try:
        # As asyncpg's DataError does: the text quotes the argument it could not encode.
        raise ValueError(f"invalid input for query argument $5: {secret!r}")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR, "porch.test"):
            log_failure(log, "a batch of %d failed", 3, exc=exc)
    [record] = caplog.records
    text = record.getMessage()
    assert "a batch of 3 failed (ValueError)" in text
    assert "test_failures.py" in text  # where it happened
    assert secret not in caplog.text and record.exc_info is None


def test_reason_says_the_code_or_the_type_never_the_text() -> None:
    from porch.client.errors import ServerError
    from porch.failures import reason

    assert reason(ServerError("bad_request", "secret text from a server")) == "bad_request"
    assert reason(ValueError("key bytes 0xdeadbeef")) == "ValueError"
