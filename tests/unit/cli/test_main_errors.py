"""Every failure a new user met (issue 6) ends in one or two sentences and its exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from porch.cli.exits import Exit
from porch.cli.main import main
from tests.integration.server import ServerProcess, free_port
from tests.unit.cli.conftest import register

NOBODY = str(uuid.uuid4())  # an account id: resolving it needs no server


def _one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("porch: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture
def alice(server: ServerProcess, tmp_path: Path) -> Path:
    profile = tmp_path / "alice"
    register(server, profile)
    return profile


def test_a_100_kb_message_is_a_usage_error_that_says_the_limit(
    alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "--profile", str(alice), "--to", NOBODY, "x" * 100_000])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.USAGE
    assert "65,536 bytes" in err


@pytest.mark.parametrize("command", ["send", "register"])
def test_a_server_url_without_scheme_suggests_http(
    command: str, alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--to", NOBODY, "hi"] if command == "send" else ["--phone", "+14155550100"]
    code = main([command, "--profile", str(alice), "--server", "127.0.0.1:8000", *extra])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.USAGE
    assert "http://127.0.0.1:8000" in err


def test_an_unreachable_server_is_a_network_error(
    alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["whoami", "--profile", str(alice), "--server", url])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.NETWORK
    assert "cannot reach the server" in err


def test_a_read_only_profile_is_a_profile_error(
    alice: Path, make_read_only, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    make_read_only(alice / "client.db")
    code = main(["send", "--profile", str(alice), "--to", NOBODY, "hello"])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.PROFILE
    assert "read-only" in err and "--profile DIR" in err


def test_a_missing_profile_says_how_to_register(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["whoami", "--profile", str(tmp_path / "none")])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.PROFILE
    assert "porch register" in err


def test_a_wrong_passphrase_is_a_profile_error(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PORCH_PASSPHRASE", "right horse battery")
    profile = tmp_path / "sealed"
    register(server, profile)
    monkeypatch.setenv("PORCH_PASSPHRASE", "wrong horse battery")
    code = main(["whoami", "--profile", str(profile)])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.PROFILE
    assert "PORCH_PASSPHRASE does not unlock" in err


def test_whoami_into_a_closed_pipe_exits_quietly(alice: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "porch.cli.main", "whoami", "--profile", str(alice)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == b""
    assert proc.returncode == Exit.BROKEN_PIPE


def test_an_internal_error_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from porch.cli import account

    async def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(account, "whoami", broken)
    code = main(["whoami", "--profile", str(tmp_path)])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.SOFTWARE
    assert "bug in porch" in err and "RuntimeError: boom" in err


def test_a_bad_server_setting_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORCH_PORT", "abc")
    code = main(["serve"])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.USAGE
    assert "PORCH_PORT" in err and "docs/operations.md" in err


def test_a_data_directory_that_cannot_be_made_is_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")  # a directory under a file: refused even to root
    code = main(["serve", "--data-dir", str(tmp_path / "file" / "data")])
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.USAGE
    assert "cannot use" in err and "--data-dir" in err and "Traceback" not in err


def test_a_port_in_use_is_a_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(
            ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)]
        )
    err = _one_sentence(capsys.readouterr().err)
    assert code == Exit.NETWORK
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "99999"],
        ["serve", "--workers", "0"],
        ["send", "--to", "@bob", "--timeout", "-1", "hi"],
        ["recv", "--wait", "1e9"],
    ],
)
def test_numbers_on_the_command_line_have_bounds(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == Exit.USAGE
    assert "is outside" in capsys.readouterr().err
