"""Registration sessions and identity-key clones over HTTP, on SQLite and PostgreSQL + Redis
(issue 6): an attacker's guesses and code requests do not lock the owner out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from porch.client import Client
from porch.client.errors import ServerError
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import MasterKey
from tests.integration.conftest import next_phone
from tests.integration.server import ServerProcess


@pytest.fixture
def spaced(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    """A server with the production spacing of codes (the shared fixture turns it off)."""
    env = dict(server_env, PORCH_CODE_INTERVAL_SECONDS="30")
    srv = ServerProcess(tmp_path / "spaced", env=env)
    srv.start()
    yield srv
    srv.stop()


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def _code(http: httpx.AsyncClient, phone: str, session_id: str | None = None) -> Any:
    body: dict[str, str] = {"phone": phone}
    if session_id is not None:
        body["session_id"] = session_id
    r = await http.post("/v1/registration/code", json=body)
    assert r.status_code == 202, r.text
    return r.json()


async def test_guesses_in_another_session_leave_the_owners_alone(server: ServerProcess) -> None:
    phone = next_phone()
    async with httpx.AsyncClient(base_url=server.url) as http:
        attacker = await _code(http, phone)
        owner = await _code(http, phone)
        code = server.last_code(phone)
        assert owner["attempts_left"] == 5 and owner["session_id"] != attacker["session_id"]
        for _ in range(10):  # what used to exhaust the number's verify limit
            r = await http.post(
                "/v1/registration/verify",
                json={"session_id": attacker["session_id"], "code": _wrong(code)},
            )
            assert r.json()["error"]["code"] in ("code_invalid", "too_many_attempts")
        r = await http.post(
            "/v1/registration/verify", json={"session_id": owner["session_id"], "code": code}
        )
        assert r.status_code == 200, r.text
        # Registering ended the attacker's session too.
        r = await http.post(
            "/v1/registration/verify", json={"session_id": attacker["session_id"], "code": code}
        )
        assert (r.status_code, r.json()["error"]["code"]) == (404, "session_not_found")


async def test_codes_to_one_number_are_spaced_not_walled_off(spaced: ServerProcess) -> None:
    phone = next_phone()
    async with httpx.AsyncClient(base_url=spaced.url) as http:
        first = await _code(http, phone)
        assert first["next_code_in"] == 30
        r = await http.post("/v1/registration/code", json={"phone": phone})
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "rate_limited" and 1 <= error["retry_after"] <= 30
        assert int(r.headers["retry-after"]) == error["retry_after"]
        assert "try again in" in error["message"] and "second" in error["message"]
        assert "code-phone" not in error["message"] and "code_phone" not in error["message"]
        # Another number is unaffected; the first session's code still works.
        await _code(http, next_phone())
        r = await http.post(
            "/v1/registration/verify",
            json={"session_id": first["session_id"], "code": spaced.last_code(phone)},
        )
        assert r.status_code == 200, r.text


async def test_sdk_retries_a_wrong_code_within_the_session(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = next_phone()
    typed = itertools.count()
    shown: list[str] = []

    async def read_code() -> str:
        code = server.last_code(phone)
        return _wrong(code) if next(typed) < 2 else f"{code[:3]} {code[3:]}"

    await Client.register(server.url, phone, read_code, tmp_path / "p", progress=shown.append)
    assert next(typed) == 3
    assert any("4 attempts left" in line for line in shown), shown
    assert any("3 attempts left" in line for line in shown), shown


async def test_sdk_stops_when_the_sessions_attempts_are_used_up(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = next_phone()

    async def read_code() -> str:
        return _wrong(server.last_code(phone))

    with pytest.raises(ServerError) as info:
        await Client.register(server.url, phone, read_code, tmp_path / "p")
    assert info.value.code == "code_invalid" and info.value.details["attempts_left"] == 0


async def test_another_accounts_identity_keys_are_refused(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    async with httpx.AsyncClient(base_url=server.url) as http:
        bundle = (
            await http.get(f"/v1/keys/{alice.account_id}", auth=alice.credentials.basic())
        ).json()
        device = bundle["devices"][0]
        phone = next_phone()
        sid = (await _code(http, phone))["session_id"]
        r = await http.post(
            "/v1/registration/verify", json={"session_id": sid, "code": server.last_code(phone)}
        )
        reg = r.json()
        auth = (f"{reg['account_id']}.1", reg["password"])

        def identity(master: MasterKey, curve: str, ed: str) -> dict[str, str]:
            signature = master.sign_device(reg["account_id"], 1, reg["registration_id"], curve, ed)
            return {
                "master_key": master.public_b64,
                "curve25519": curve,
                "ed25519": ed,
                "signature": signature,
            }

        # Alice's public device keys under Mallory's own master key: a valid binding, a clone.
        own = OlmMachine.create(b"o" * 32)
        for curve, ed in (
            (device["curve25519"], device["ed25519"]),
            (device["curve25519"], own.ed25519),
            (own.curve25519, device["ed25519"]),
        ):
            body = {"identity": identity(MasterKey.generate(), curve, ed)}
            r = await http.put("/v1/keys", auth=auth, json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (409, "identity_key_in_use")
        body = {"identity": identity(MasterKey.generate(), own.curve25519, own.ed25519)}
        r = await http.put("/v1/keys", auth=auth, json=body)
        assert r.status_code == 200, r.text
        # Alice's keys are untouched.
        after = (
            await http.get(f"/v1/keys/{alice.account_id}", auth=alice.credentials.basic())
        ).json()
        assert after["devices"] == bundle["devices"]
