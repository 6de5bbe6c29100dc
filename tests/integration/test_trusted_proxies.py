"""X-Forwarded-For moves the rate-limit address only when a trusted proxy sent it.

The server runs with PORCH_TRUSTED_PROXIES set to one loopback address; requests come from
that address (the "proxy") and from another loopback address (a stranger). Addresses and
window lengths are random per run, so shared Redis rate-limit windows never collide.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from tests.integration.conftest import BOTH_STACKS, next_phone, server_env_of
from tests.integration.server import ServerProcess

# Also against the gateway on websockets (PORCH_WS_STACK=websockets; picows is the default).
server_env = pytest.fixture(params=BOTH_STACKS, name="server_env")(server_env_of)


def _addresses(n: int) -> list[str]:
    base = random.randrange(1, 250)
    return [f"198.51.{base}.{i}" for i in random.sample(range(1, 250), n)]


@pytest.fixture
def proxied(tmp_path: Path, server_env: dict[str, str]):  # type: ignore[no-untyped-def]
    proxy, stranger = (f"127.0.0.{i}" for i in random.sample(range(2, 250), 2))
    seconds = random.randrange(2000, 3000)
    env = dict(
        server_env,
        PORCH_TRUSTED_PROXIES=proxy,
        PORCH_LIMIT_CODE_PER_ADDRESS=f"2/{seconds}",
        PORCH_LIMIT_AUTH_FAILURES_PER_ADDRESS=f"1/{seconds}",
    )
    srv = ServerProcess(tmp_path / "proxied", env=env)
    srv.start()
    yield srv, proxy, stranger
    srv.stop()


async def _code_statuses(srv: ServerProcess, local: str, forwarded: list[str]) -> list[int]:
    transport = httpx.AsyncHTTPTransport(local_address=local)
    async with httpx.AsyncClient(base_url=srv.url, transport=transport) as http:
        statuses = []
        for address in forwarded:
            r = await http.post(
                "/v1/registration/code",
                json={"phone": next_phone()},
                headers={"x-forwarded-for": f"6.6.6.6, {address}"},
            )
            statuses.append(r.status_code)
        return statuses


async def test_http_rate_limits_use_forwarded_for_only_from_a_trusted_proxy(
    proxied: tuple[ServerProcess, str, str],
) -> None:
    srv, proxy, stranger = proxied
    a, b, c, d, e = _addresses(5)
    # Through the proxy every client has its own window (2 each): four clients, four codes...
    assert await _code_statuses(srv, proxy, [a, b, c, d]) == [202] * 4
    # ...and a client's third request is refused, whichever proxy hop it claims before.
    assert await _code_statuses(srv, proxy, [a, a]) == [202, 429]
    # A stranger's header is ignored: a fresh forged address per request does not help.
    assert await _code_statuses(srv, stranger, [e, b, c]) == [202, 202, 429]


async def _ws_auth_error(srv: ServerProcess, local: str, forwarded: str) -> str:
    async with websockets.connect(
        f"ws://127.0.0.1:{srv.port}/v1/ws",
        additional_headers={"X-Forwarded-For": forwarded},
        local_addr=(local, 0),
    ) as ws:
        auth = {"type": "auth", "account": str(uuid.uuid4()), "device": 1, "password": "nope"}
        await ws.send(json.dumps(auth))
        frame = json.loads(await ws.recv())
        assert frame["type"] == "error"
        return str(frame["code"])


async def test_websocket_auth_failures_use_forwarded_for_only_from_a_trusted_proxy(
    proxied: tuple[ServerProcess, str, str],
) -> None:
    srv, proxy, stranger = proxied
    a, b, c, d = _addresses(4)
    # One failure allowed per address: two forwarded clients fail once each, as themselves.
    assert await _ws_auth_error(srv, proxy, a) == "auth_failed"
    assert await _ws_auth_error(srv, proxy, b) == "auth_failed"
    assert await _ws_auth_error(srv, proxy, a) == "rate_limited"
    # The stranger's forged addresses all count against the stranger.
    assert await _ws_auth_error(srv, stranger, c) == "auth_failed"
    assert await _ws_auth_error(srv, stranger, d) == "rate_limited"
