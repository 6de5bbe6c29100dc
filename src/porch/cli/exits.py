"""Exit codes of the `porch` command and the one place errors become messages for people.

Every failure ends as one or two lines on standard error, `porch: <what happened>; <what to
do>`, and an exit code that says which kind of failure it was, so scripts can branch on it
(README.md, "Exit codes"). Tracebacks are for bugs only, and only with PORCH_DEBUG=1.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any

from porch.cli.text import printable


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # the command ran and did not succeed (recipient's keys do not verify, ...)
    USAGE = 2  # bad arguments or input: fix the command line (argparse uses 2 as well)
    NETWORK = 3  # the server could not be reached, or did not answer in time
    REFUSED = 4  # the server refused the request (wrong code, rate limited, unknown recipient)
    PROFILE = 5  # the local profile: missing, read-only, locked, damaged, wrong passphrase
    SOFTWARE = 70  # a bug in porch (sysexits.h EX_SOFTWARE)
    QUEUED = 75  # `porch send` stored the message and retries it later (EX_TEMPFAIL)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
    BROKEN_PIPE = 141  # the reader of our output went away (128 + SIGPIPE, as shells report)


class CommandError(Exception):
    """A failure the command itself detected, outside the SDK (a bad server setting, ...)."""

    def __init__(self, message: str, code: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.exit = code


def bounded(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number within [low, high] (bounds on every number we accept)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            # Whole bounds for whole numbers: `1..2147483647`, not `1..2.14748e+09`.
            span = f"{int(low)}..{int(high)}" if kind is int else f"{low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"{text} is outside {span}")
        return value

    return parse


def _leaf(exc: BaseException) -> BaseException:
    """The error that matters inside a task group's ExceptionGroup (the first SDK error)."""
    while isinstance(exc, BaseExceptionGroup):
        from porch.client.errors import ClientError

        found = exc.subgroup(lambda e: isinstance(e, ClientError | KeyboardInterrupt))
        exc = (found or exc).exceptions[0]
    return exc


def classify(exc: BaseException) -> tuple[Exit, str]:
    """The exit code and the sentence for an exception that reached the CLI's boundary."""
    from porch.client import errors
    from porch.client.profile import profile_error

    exc = _leaf(exc)
    if isinstance(exc, KeyboardInterrupt):
        return Exit.INTERRUPTED, "interrupted"
    if isinstance(exc, CommandError):
        return exc.exit, str(exc)
    if isinstance(exc, errors.UsageError):
        return Exit.USAGE, str(exc)
    if isinstance(exc, errors.MediaError) and exc.code == errors.ClientCode.MEDIA_UNREADABLE:
        return Exit.USAGE, str(exc)  # a missing path, a directory: fix the command line
    if isinstance(exc, errors.ServerUnreachable | errors.Timeout):
        return Exit.NETWORK, str(exc)
    if isinstance(exc, errors.ProfileError):
        return Exit.PROFILE, str(exc)
    if isinstance(exc, errors.ServerError):
        return Exit.REFUSED, _refusal(exc)
    if isinstance(exc, errors.RecipientNotFound | errors.SendFailed):
        return Exit.REFUSED, str(exc)
    if isinstance(exc, errors.ClientError):
        return Exit.FAILED, str(exc)
    if isinstance(exc, sqlite3.Error | PermissionError):
        # A profile problem that appeared after it was opened (made read-only meanwhile, ...).
        return Exit.PROFILE, str(profile_error(exc, Path(getattr(exc, "filename", "") or ".")))
    if isinstance(exc, OSError):
        return Exit.FAILED, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return Exit.SOFTWARE, (
        f"internal error ({type(exc).__name__}: {exc}); this is a bug in porch, please report "
        "it (PORCH_DEBUG=1 shows the traceback)"
    )


def _refusal(exc: BaseException) -> str:
    from porch.client.errors import ServerError

    assert isinstance(exc, ServerError)
    message = str(exc)
    if exc.code == "code_invalid" and "attempts_left" in exc.details:
        # Client.register asks again while the session has attempts left; what reaches here is
        # the last wrong code (or one read from a pipe, which cannot be asked again).
        return (
            "wrong verification code, nothing was registered; run the same command again "
            "for a new code"
        )
    if exc.code == "rate_limited" and "try again" in message:
        return message  # the server's sentence already says when
    if exc.code == "rate_limited":
        after = exc.details.get("retry_after")
        return f"{message} (the server is rate limiting; try again" + (
            f" in {after} s)" if after else " later)"
        )
    if exc.code in ("auth_failed", "auth_required"):
        # Most often the wrong server (--server, or a profile moved to another node): that is
        # checked first; re-registering makes a new identity, so it comes last, said so.
        return (
            f"{message}: check that --server (or the profile's server, `porch whoami`) is the "
            "server this profile registered with; if it is, this device was removed or the "
            "number was registered again elsewhere, and only `porch register` helps (it makes "
            "a new identity: contacts see a new safety number)"
        )
    return f"{message} ({exc.code})" if exc.code and exc.code not in message else message


def report(exc: BaseException) -> int:
    """Print the one-line message for exc on standard error and return the exit code."""
    code, message = classify(exc)
    if code is Exit.SOFTWARE and os.environ.get("PORCH_DEBUG") == "1":
        raise exc
    # One line: whitespace runs (newlines from a library's message) become single spaces.
    print(f"porch: {printable(' '.join(message.split()))}", file=sys.stderr)
    return int(code)
