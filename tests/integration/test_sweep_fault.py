"""A retention sweep that fails once leaves the server ready (issue 7).

The server runs in this process (uvicorn on loopback), so that the fault can be injected
through a collaborator: the real store of the backend, wrapped so that its first sweep raises
the OSError a failing disk would. Before, that one error ended the lifespan's task group and
closed the store for good: /readyz answered 503 while /healthz said ok.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from porch.server.app import create_app, make_store
from porch.server.store.base import Store, SweepResult
from tests.integration.conftest import register
from tests.integration.server import (
    ServerProcess,
    free_port,
    in_process_settings,
    serving_in_process,
)
from tests.integration.test_messaging import collect_messages


class SweepFailsOnce:
    """The backend's real store, whose first sweep fails with a disk error."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.sweeps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> SweepFailsOnce:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)

    async def sweep(self, now: int) -> SweepResult:
        self.sweeps += 1
        if self.sweeps == 1:
            raise OSError(errno.EIO, "injected by the test: disk I/O error")
        return await self._inner.sweep(now)


@pytest.fixture
async def served(
    tmp_path: Path, server_env: dict[str, str]
) -> AsyncIterator[tuple[ServerProcess, SweepFailsOnce]]:
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    settings = in_process_settings(srv, server_env, sweep_interval_seconds=0.2)
    store = SweepFailsOnce(make_store(settings))
    app = create_app(settings, store=store)  # type: ignore[arg-type]
    async with serving_in_process(app, srv.port):
        yield srv, store


async def test_a_failed_sweep_is_retried_and_the_server_stays_ready(
    served: tuple[ServerProcess, SweepFailsOnce], tmp_path: Path
) -> None:
    srv, store = served
    deadline = time.monotonic() + 10
    while store.sweeps < 3:  # failed once, then swept again at the next intervals
        assert time.monotonic() < deadline, f"{store.sweeps} sweep(s): the sweeper stopped"
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=srv.url) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}
    # Ready for real: a message goes through the store and reaches its recipient.
    alice = await register(srv, tmp_path / "alice")
    bob = await register(srv, tmp_path / "bob")
    async with alice, bob:
        await alice.send_text(bob.account_id, "after the failed sweep")
        got = await collect_messages(bob, 1, timeout=20)
        assert [m.text for m in got] == ["after the failed sweep"]
