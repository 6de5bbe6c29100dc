"""Fixtures for the `porch` command's tests: a real server on loopback (tests/integration's
ServerProcess, SQLite, one per module), registered profiles, read-only files and stdin."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client import Client
from tests.integration.server import ServerProcess

_numbers = itertools.count(random.randrange(100, 9000, 100))


def next_phone() -> str:
    return f"+1415556{next(_numbers):04d}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("cli-server") / "data")
    srv.start()
    yield srv
    srv.stop()


def register(server: ServerProcess, profile: Path, phone: str | None = None, **kw: str) -> str:
    """Register profile with the SDK (not the command under test); returns its phone."""
    phone = phone or next_phone()

    async def read_code() -> str:
        return server.last_code(phone)

    asyncio.run(Client.register(server.url, phone, read_code, profile, **kw))
    return phone


def codes_requested(server: ServerProcess, phone: str) -> int:
    outbox = server.data_dir / "sms-outbox.jsonl"
    if not outbox.exists():
        return 0
    return outbox.read_text().count(f'"{phone}"')


class CodeFromServer:
    """Standard input that is not a terminal and yields the newest code the server sent (read
    at the moment the command reads its input, after it asked for the code)."""

    def __init__(self, server: ServerProcess, phone: str, wrong: int = 0) -> None:
        # The first `wrong` codes read are wrong ones (every one, for a large number).
        self.server, self.phone, self.wrong = server, phone, wrong

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        code = self.server.last_code(self.phone)
        if self.wrong > 0:
            self.wrong -= 1
            code = f"{(int(code) + 1) % 1_000_000:06d}"
        return code + "\n"


@pytest.fixture
def make_read_only() -> Iterator[object]:
    """make_read_only(path): path cannot be written, even by root (who ignores modes): the
    immutable attribute then, else mode 0500/0400. Undone at teardown."""
    done: list[Path] = []

    def apply(path: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            path.chmod(0o500 if path.is_dir() else 0o400)
        done.append(path)

    yield apply
    for path in reversed(done):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o700 if path.is_dir() else 0o600)
