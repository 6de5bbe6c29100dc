"""What a new user met trying the CLI after issue 6: each ends in a sentence that says what to
do, with the README's exit code."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from porch.cli.exits import Exit, classify
from porch.cli.main import main
from porch.client.errors import ServerError
from tests.integration.server import ServerProcess, free_port
from tests.unit.cli.conftest import CodeFromServer, codes_requested, next_phone, register


@pytest.fixture
def alice(server: ServerProcess, tmp_path: Path) -> Path:
    profile = tmp_path / "alice"
    register(server, profile)
    return profile


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_message_is_a_usage_error_and_nothing_is_queued(
    text: str, alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "--profile", str(alice), "--to", "@nobody", text])
    assert code == Exit.USAGE
    assert "the message is empty" in capsys.readouterr().err
    assert main(["outbox", "--profile", str(alice)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "the message is empty"),
        (b"\xff\xfe not text", "not UTF-8"),
        (b"x" * 70_000, "over 65,536 bytes"),
        (b"hi from a pipe\n", "@nobody"),  # read: it gets as far as the recipient
    ],
)
def test_a_message_from_standard_input_with_a_dash(
    data: bytes,
    says: str,
    alice: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["send", "--profile", str(alice), "--to", "@nobody", "-"])
    err = capsys.readouterr().err
    assert code != Exit.OK and says in err and "Traceback" not in err, err
    if says != "@nobody":
        assert code == Exit.USAGE


def test_a_recipient_without_at_sign_is_a_usage_error(
    alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "--profile", str(alice), "--to", "bob", "hi"])
    assert code == Exit.USAGE
    assert "@bob" in capsys.readouterr().err


def test_an_unknown_username_is_named_with_its_at_sign(
    alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "--profile", str(alice), "--to", "@nosuchuser", "hi"])
    assert code == Exit.REFUSED
    assert "nobody on this server is @nosuchuser; check the spelling" in capsys.readouterr().err


def test_send_to_a_wrong_port_says_the_server_was_not_reached(
    alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    account = json.loads((alice / "profile.json").read_text())["account_id"]  # no lookup
    argv = ["send", "--profile", str(alice), "--server", url, "--timeout", "1", "--to", account]
    code = main([*argv, "hi"])
    err = capsys.readouterr().err
    assert code == Exit.QUEUED
    assert f"could not reach {url}" in err and "cannot connect" in err and "queued" in err


def test_send_to_a_server_that_is_down_says_so_after_5_s_not_30(
    alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    account = json.loads((alice / "profile.json").read_text())["account_id"]
    code = main(["send", "--profile", str(alice), "--server", url, "--to", account, "hi"])
    err = capsys.readouterr().err
    assert code == Exit.QUEUED
    assert f"could not reach {url} within 5 s" in err and "queued" in err


def test_https_to_a_plain_http_server_suggests_http(
    server: ServerProcess, alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.url.replace("http://", "https://")
    code = main(["whoami", "--profile", str(alice), "--server", url])
    assert code == Exit.NETWORK
    assert "is it an http:// server?" in capsys.readouterr().err


def test_outbox_ids_may_follow_options(alice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["outbox", "retry", "--profile", str(alice), "nosuchid"])
    assert code == 1  # ran, and said there is no such message (not a usage error)
    assert "no failed message nosuchid" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["whoami", "--profile", str(alice), "extra"])
    assert info.value.code == Exit.USAGE


def test_a_rate_limit_says_when_to_try_again_once() -> None:
    sentence = "a code was sent a short while ago; try again in 15 seconds"
    exc = ServerError("rate_limited", sentence, 429, retry_after=15)
    code, message = classify(exc)
    assert code == Exit.REFUSED
    assert message.count("try again") == 1


def test_register_refuses_a_profile_that_a_running_command_uses(
    server: ServerProcess, alice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from porch.client.ownership import ProfileLock

    before = (alice / "profile.json").read_text()
    phone = next_phone()
    chat = ProfileLock(alice)  # what an open `porch chat` on the profile holds
    assert chat.try_acquire()
    try:
        argv = ["register", "--force", "--server", server.url, "--profile", str(alice)]
        code = main([*argv, "--phone", phone])
    finally:
        chat.release()
    err = capsys.readouterr().err
    assert code == Exit.PROFILE
    assert "in use by another porch process" in err and "close it" in err
    assert (alice / "profile.json").read_text() == before
    assert codes_requested(server, phone) == 0  # refused before any code was sent


def test_a_bad_username_is_refused_before_a_code_is_sent(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    phone = next_phone()
    argv = ["register", "--server", server.url, "--phone", phone, "--username", "a"]
    code = main([*argv, "--profile", str(tmp_path / "p")])
    assert code == Exit.USAGE
    assert "3-32 characters" in capsys.readouterr().err
    assert codes_requested(server, phone) == 0


def test_a_taken_username_still_leaves_a_working_profile(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(server, tmp_path / "first", username="takenname")
    phone = next_phone()
    monkeypatch.setattr(sys, "stdin", CodeFromServer(server, phone))
    profile = tmp_path / "second"
    argv = ["register", "--server", server.url, "--phone", phone, "--username", "takenname"]
    code = main([*argv, "--profile", str(profile)])
    err = capsys.readouterr().err
    assert code == Exit.REFUSED
    assert "@takenname is taken" in err and "others can reach you by phone number" in err
    assert json.loads((profile / "profile.json").read_text())["phone"] == phone
    assert main(["whoami", "--profile", str(profile)]) == 0  # the account works
