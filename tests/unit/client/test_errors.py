"""The SDK's one error tree, and library errors mapped into it where the SDK meets them."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client import Client, ClientError
from porch.client.errors import (
    ClientCode,
    MessageTooLong,
    NotRegistered,
    ProfileError,
    ServerUnreachable,
    Timeout,
    UsageError,
)
from porch.client.inprocess import InProcessTransport
from porch.client.profile import ProfileConfig, check_server_url
from porch.server.app import create_app
from porch.server.settings import Settings

PHONE = "+14155550161"


def test_codes_are_stable_strings() -> None:
    assert ClientCode.USAGE == "usage"
    assert ClientCode.PROFILE_READ_ONLY == "profile_read_only"
    assert NotRegistered("x").code == "not_registered"
    assert Timeout("x").code == "timeout"
    assert MessageTooLong("x").code == "message_too_long"
    assert ServerUnreachable("x").code == "unreachable"


def test_one_tree() -> None:
    assert issubclass(MessageTooLong, UsageError)
    assert issubclass(NotRegistered, ProfileError)
    for cls in (UsageError, ProfileError, ServerUnreachable, Timeout):
        assert issubclass(cls, ClientError)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://chat.example.org", "https://chat.example.org"),
    ],
)
def test_server_urls_accepted(url: str, expected: str) -> None:
    assert check_server_url(url) == expected


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("localhost", "http://localhost"),
        ("ftp://host", "http://"),
        ("http://", "http://"),
        ("http://host:99999", "1-65535"),
    ],
)
def test_server_urls_refused_with_a_hint(url: str, hint: str) -> None:
    with pytest.raises(UsageError, match=hint.replace(".", r"\.")):
        check_server_url(url)


def test_a_damaged_profile_json_is_a_profile_error(tmp_path: Path) -> None:
    (tmp_path / "profile.json").write_text("{not json")
    with pytest.raises(ProfileError) as info:
        ProfileConfig.load(tmp_path)
    assert info.value.code == ClientCode.PROFILE_CORRUPT
    (tmp_path / "profile.json").write_text(json.dumps({"server": "x"}))
    with pytest.raises(ProfileError):
        ProfileConfig.load(tmp_path)


@pytest.fixture
def registered(tmp_path: Path) -> Iterator[tuple[Path, InProcessTransport]]:
    settings = Settings(data_dir=tmp_path / "srv", limit_code_per_address="1000/1")
    outbox = tmp_path / "srv" / "sms-outbox.jsonl"

    async def read_code() -> str:
        lines = outbox.read_text(encoding="utf-8").splitlines()
        return str([json.loads(x) for x in lines if PHONE in x][-1]["code"])

    async def setup() -> tuple[Path, InProcessTransport]:
        t = InProcessTransport(create_app(settings))
        await t.__aenter__()
        profile = tmp_path / "profile"
        await Client.register("http://testserver", PHONE, read_code, profile, transport=t)
        return profile, t

    yield setup  # type: ignore[misc]


async def test_a_too_long_text_is_a_usage_error_saying_the_limit(registered) -> None:  # type: ignore[no-untyped-def]
    profile, t = await registered()
    try:
        client = Client(profile, transport=t)
        with pytest.raises(MessageTooLong, match="65,536 bytes"):
            await client.send_text(str(uuid.uuid4()), "x" * 100_000, wait=False)
        client._store.close()  # never entered: only the store is open
    finally:
        await t.__aexit__(None, None, None)


async def test_a_wrong_passphrase_is_a_profile_error(
    registered, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PORCH_PASSPHRASE", "first")
    profile, t = await registered()
    await t.__aexit__(None, None, None)
    monkeypatch.setenv("PORCH_PASSPHRASE", "second")
    with pytest.raises(ProfileError, match="PORCH_PASSPHRASE does not unlock") as info:
        Client(profile)
    assert info.value.code == ClientCode.PROFILE_LOCKED


async def test_a_read_only_store_is_reported_when_the_profile_opens(registered) -> None:  # type: ignore[no-untyped-def]
    profile, t = await registered()
    await t.__aexit__(None, None, None)
    db = profile / "client.db"
    root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(db)], check=True) if root else db.chmod(0o400)
    try:
        with pytest.raises(ProfileError, match="read-only") as info:
            Client(profile)
        assert info.value.code == ClientCode.PROFILE_READ_ONLY
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True) if root else db.chmod(0o600)
