from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client import Client
from tests.integration.backends import REDIS_URL, fresh_database, require_services
from tests.integration.server import ServerProcess

# Random start: numbers differ between runs, so shared Redis rate-limit windows never collide.
_numbers = itertools.count(random.randrange(100, 9000, 100))


def next_phone() -> str:
    return f"+1415555{next(_numbers):04d}"


def backend_env(param: str) -> Iterator[dict[str, str]]:
    """The server's environment for one backend: sqlite (SQLite + in-process bus), postgres
    (PostgreSQL + Redis), or sqlite-websockets (SQLite, the gateway's WebSocket on websockets'
    sans-I/O protocol instead of picows, the default)."""
    if param == "sqlite":
        yield {}
        return
    if param == "sqlite-websockets":
        yield {"PORCH_WS_STACK": "websockets"}
        return
    require_services()
    for url in fresh_database():
        yield {"PORCH_DATABASE_URL": url, "PORCH_REDIS_URL": REDIS_URL}


#: For the gateway's own tests, which also run against the other WebSocket stack (websockets,
#: so that the alternative to the default does not rot): a module sets
#: `server_env = pytest.fixture(params=BOTH_STACKS, name="server_env")(server_env_of)`.
BOTH_STACKS = ["sqlite", "postgres", "sqlite-websockets"]


def server_env_of(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    yield from backend_env(request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def server_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Every server-backed test runs twice: SQLite + in-process bus, PostgreSQL + Redis."""
    yield from backend_env(request.param)


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server-data", env=server_env)
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
