"""Takeover order at the gateway (connection._AUTH_ORDER, Bus.subscribe): of two connections of
one device, the one whose `auth` frame came first is closed with 4409 even when its
authentication finishes last, and the newer one stays connected. Before, the slow one took
over and kicked the newer one off (seen on PostgreSQL, whose reads may finish out of order)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from porch.client.inprocess import InProcessTransport
from porch.client.transport import ConnectionClosed, WebSocketLike
from porch.server.app import create_app
from porch.server.services.accounts import AccountService, Principal
from tests.unit.client.test_inprocess import ALICE, _register, _settings

REPLACED = 4409


async def _frames_until_closed(ws: WebSocketLike) -> tuple[list[dict[str, Any]], int | None]:
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    except ConnectionClosed as exc:
        return frames, exc.code


async def test_a_slow_older_auth_does_not_take_over_from_a_newer_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = asyncio.Event()
    calls = 0
    real = AccountService.authenticate

    async def first_one_slow(self: AccountService, *args: Any, **kwargs: Any) -> Principal:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()  # the older connection's store read comes back last
        return await real(self, *args, **kwargs)

    app = create_app(_settings(tmp_path))
    async with InProcessTransport(app) as t:
        alice = await _register(t, tmp_path, ALICE, "alice")
        creds = alice.credentials
        auth = json.dumps(
            {
                "type": "auth",
                "account": creds.account_id,
                "device": creds.device_id,
                "password": creds.password,
            }
        )
        monkeypatch.setattr(AccountService, "authenticate", first_one_slow)
        older = await t.connect(alice.config.ws_url)
        await older.send(auth)
        while calls < 1:
            await asyncio.sleep(0.01)
        newer = await t.connect(alice.config.ws_url)
        await newer.send(auth)
        assert json.loads(await asyncio.wait_for(newer.recv(), 10))["type"] == "ready"
        gate.set()
        _frames, code = await _frames_until_closed(older)
        assert code == REPLACED
        # The newer one is still served: a bad frame gets an error, not a closed socket.
        await newer.send(json.dumps({"type": "nope"}))
        reply = json.loads(await asyncio.wait_for(newer.recv(), 10))
        while reply["type"] == "drained":  # the backlog's end comes first
            reply = json.loads(await asyncio.wait_for(newer.recv(), 10))
        assert reply["type"] == "error"
        await newer.close()
        await alice.aclose()
