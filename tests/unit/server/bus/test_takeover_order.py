"""Connection takeover on one node follows the order the auth frames arrived in (base.py,
Bus.subscribe): a connection that began earlier but finished authenticating later does not
replace the newer one, on either bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from porch.server.bus.base import Bus, DeviceEvent
from porch.server.bus.memory import MemoryBus
from porch.server.bus.redis import RedisBus
from tests.integration.backends import REDIS_URL, require_services


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "redis":
        require_services()
        async with RedisBus(REDIS_URL) as redis:
            yield redis
    else:
        async with MemoryBus() as memory:
            yield memory


async def test_the_older_connection_that_authenticates_last_is_the_one_replaced(
    bus: Bus,
) -> None:
    ended: list[str] = []
    got: list[str] = []
    newer = bus.subscribe(
        "acct-order", 1, lambda e: got.append("newer"), lambda: ended.append("newer"), order=8
    )
    older = bus.subscribe(
        "acct-order", 1, lambda e: got.append("older"), lambda: ended.append("older"), order=7
    )
    assert ended == ["older"]
    assert bus.post("acct-order", 1, DeviceEvent(frame={"type": "x"}))
    assert got == ["newer"]
    older.close()  # closing the refused one leaves the newer one routed
    assert bus.post("acct-order", 1, DeviceEvent(frame={"type": "x"}))
    assert got == ["newer", "newer"]
    newest = bus.subscribe("acct-order", 1, lambda e: got.append("newest"), lambda: None, order=9)
    assert ended == ["older", "newer"]
    newest.close()
    newer.close()
