"""classify: each error class has its exit code, task groups' ExceptionGroups are unwrapped."""

from __future__ import annotations

import sqlite3

import pytest

from porch.cli.exits import CommandError, Exit, classify, report
from porch.client.errors import (
    ClientError,
    IdentityError,
    MessageTooLong,
    NotRegistered,
    ProfileError,
    RecipientNotFound,
    SendFailed,
    ServerError,
    ServerUnreachable,
    Timeout,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (MessageTooLong("too long"), Exit.USAGE),
        (CommandError("bad setting"), Exit.USAGE),
        (ServerUnreachable("down"), Exit.NETWORK),
        (Timeout("slow"), Exit.NETWORK),
        (ServerError("rate_limited", "slow down", 429, retry_after=3), Exit.REFUSED),
        (RecipientNotFound("nobody"), Exit.REFUSED),
        (SendFailed("refused"), Exit.REFUSED),
        (ProfileError("read-only"), Exit.PROFILE),
        (NotRegistered("none"), Exit.PROFILE),
        (sqlite3.OperationalError("attempt to write a readonly database"), Exit.PROFILE),
        (IdentityError("bad keys"), Exit.FAILED),
        (ClientError("replaced", code="replaced"), Exit.FAILED),
        (KeyboardInterrupt(), Exit.INTERRUPTED),
        (ValueError("bug"), Exit.SOFTWARE),
    ],
)
def test_each_class_has_its_exit_code(exc: BaseException, code: Exit) -> None:
    assert classify(exc)[0] == code


def test_a_task_groups_exception_group_is_unwrapped() -> None:
    group = ExceptionGroup("tasks", [ValueError("noise"), ServerUnreachable("cannot reach")])
    assert classify(BaseExceptionGroup("outer", [group])) == (Exit.NETWORK, "cannot reach")


def test_rate_limited_says_when_to_retry() -> None:
    _code, message = classify(ServerError("rate_limited", "too many requests", 429, retry_after=3))
    assert "try again in 3 s" in message


def test_report_prints_one_escaped_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(ServerError("bad_request", "line one\nline \x1b[31mtwo", 400)) == Exit.REFUSED
    err = capsys.readouterr().err
    assert err == "porch: line one line \\x1b[31mtwo (bad_request)\n"


def test_porch_debug_shows_the_traceback_of_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORCH_DEBUG", "1")
    with pytest.raises(ValueError, match="bug"):
        report(ValueError("bug"))


def test_auth_failed_points_at_the_server_before_re_registering(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report(ServerError("auth_failed", "unknown device or wrong password", 401))
    err = capsys.readouterr().err
    server, register = err.index("--server"), err.index("porch register")
    assert server < register and "new identity" in err
    assert err.count("\n") == 1
