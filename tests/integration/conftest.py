from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client import Client
from tests.integration.server import ServerProcess

_numbers = itertools.count(100)


def next_phone() -> str:
    return f"+1415555{next(_numbers):04d}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server-data")
    srv.start()
    yield srv
    srv.stop()


async def register(
    server: ServerProcess, profile: Path, phone: str | None = None, **kw: str
) -> Client:
    phone = phone or next_phone()

    async def read_code() -> str:
        return server.last_code(phone)

    await Client.register(server.url, phone, read_code, profile, **kw)
    return Client(profile)


@pytest.fixture
def register_client(server: ServerProcess, tmp_path: Path):  # type: ignore[no-untyped-def]
    counter = itertools.count()

    async def make(phone: str | None = None, **kw: str) -> Client:
        return await register(server, tmp_path / f"profile-{next(counter)}", phone, **kw)

    return make
