"""`porch register`: nothing is created on the server that the profile could not keep, an
existing profile is never replaced silently, the code prompt tells where the code is and
Ctrl-C at it ends the command at once; profiles are private whatever the umask."""

from __future__ import annotations

import json
import os
import pty
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.cli.exits import Exit
from porch.cli.main import main
from porch.client import Client
from tests.integration.server import ServerProcess, default_sigint
from tests.unit.cli.conftest import CodeFromServer, codes_requested, next_phone, register


def _register(server: ServerProcess, profile: Path, phone: str, *extra: str) -> int:
    return main(
        ["register", "--server", server.url, "--phone", phone, "--profile", str(profile), *extra]
    )


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_register_into_a_read_only_folder_fails_before_the_server_is_asked(
    server: ServerProcess, tmp_path: Path, make_read_only, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    parent = tmp_path / "locked"
    parent.mkdir()
    make_read_only(parent)
    phone = next_phone()
    code = _register(server, parent / "profile", phone)
    err = capsys.readouterr().err
    assert code == Exit.PROFILE, err
    assert "read-only" in err and "Traceback" not in err
    assert codes_requested(server, phone) == 0  # no code, so no account


def test_register_over_a_profile_needs_force_and_says_what_is_lost(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile = tmp_path / "p"
    first = register(server, profile)
    before = json.loads((profile / "profile.json").read_text())
    phone = next_phone()
    monkeypatch.setattr(sys, "stdin", CodeFromServer(server, phone))

    code = _register(server, profile, phone)
    err = capsys.readouterr().err
    assert code == Exit.USAGE
    assert first in err and "--force" in err
    assert "message history" in err and "safety number" in err
    assert json.loads((profile / "profile.json").read_text()) == before
    assert codes_requested(server, phone) == 0

    code = _register(server, profile, phone, "--force")
    err = capsys.readouterr().err
    assert code == Exit.OK, err
    assert json.loads((profile / "profile.json").read_text())["phone"] == phone


def test_a_wrong_code_is_asked_again_with_the_attempts_that_are_left(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    phone = next_phone()
    monkeypatch.setattr(sys, "stdin", CodeFromServer(server, phone, wrong=2))
    code = _register(server, tmp_path / "p", phone)
    err = capsys.readouterr().err
    assert code == Exit.OK, err
    assert "5 attempts to type it" in err
    assert err.index("4 attempts left") < err.index("3 attempts left"), err
    assert err.count("sms-outbox.jsonl") == 1  # where a development server puts the code


def test_the_last_wrong_code_says_to_start_again(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    phone = next_phone()
    monkeypatch.setattr(sys, "stdin", CodeFromServer(server, phone, wrong=99))
    code = _register(server, tmp_path / "p", phone)
    err = capsys.readouterr().err
    assert code == Exit.REFUSED, err
    assert "1 attempt left" in err  # counted down to the last one, then refused
    assert "wrong verification code" in err and "run the same command again" in err
    assert not (tmp_path / "p" / "profile.json").exists()


def test_a_registered_profile_is_private_under_umask_022(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    umask_022: None,
) -> None:
    profile = tmp_path / "new" / "profile"
    phone = next_phone()
    monkeypatch.setattr(sys, "stdin", CodeFromServer(server, phone))
    assert _register(server, profile, phone) == Exit.OK
    client = Client(profile)  # the store is open: its -wal and -shm files exist too
    try:
        names = sorted(p.name for p in profile.iterdir())
        assert {"profile.json", "client.db", "client.db-wal", "client.db-shm"} <= set(names)
        assert stat.S_IMODE(profile.stat().st_mode) == 0o700
        for path in profile.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        client._store.close()


def test_ctrl_c_at_the_code_prompt_exits_at_once(server: ServerProcess, tmp_path: Path) -> None:
    # A real terminal: getpass reads it, and SIGINT arrives while it waits for a key.
    profile = str(tmp_path / "p")
    proc, master = _pty_porch(
        ["register", "--server", server.url, "--phone", next_phone(), "--profile", profile]
    )
    try:
        output = _read_until(master, b"Verification code:")
        assert b"Verification code:" in output, output
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == Exit.INTERRUPTED
        assert b"sms-outbox.jsonl" in output  # where a development server puts the code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _pty_porch(args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "porch.cli.main", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=default_sigint,  # Ctrl-C as in a terminal, even in a background suite
    )
    os.close(slave)
    return proc, master


def _read_until(master: int, marker: bytes, timeout: float = 30) -> bytes:
    output = b""
    deadline = time.monotonic() + timeout
    while marker not in output and time.monotonic() < deadline:
        try:
            output += os.read(master, 4096)
        except OSError:
            break
    return output


def test_register_over_a_profile_asks_in_a_terminal(server: ServerProcess, tmp_path: Path) -> None:
    profile = tmp_path / "p"
    register(server, profile)
    before = (profile / "profile.json").read_text()
    phone = next_phone()
    proc, master = _pty_porch(
        ["register", "--server", server.url, "--phone", phone, "--profile", str(profile)]
    )
    try:
        output = _read_until(master, b"Type yes to continue:")
        assert b"safety number" in output, output
        os.write(master, b"no\n")
        assert proc.wait(timeout=10) == Exit.FAILED
        output += _read_until(master, b"nothing changed", timeout=2)
        assert b"nothing changed" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert (profile / "profile.json").read_text() == before
    assert codes_requested(server, phone) == 0


def test_a_failed_first_register_leaves_no_folder_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.server import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fresh = tmp_path / "fresh"
    code = main(["register", "--server", dead, "--phone", "+14155550123", "--profile", str(fresh)])
    assert code == Exit.NETWORK and "cannot reach the server" in capsys.readouterr().err
    assert not fresh.exists()
    mine = tmp_path / "mine"  # a folder the user made stays, whatever else is in it
    mine.mkdir()
    code = main(["register", "--server", dead, "--phone", "+14155550123", "--profile", str(mine)])
    assert code == Exit.NETWORK and mine.is_dir()
