"""Every kind of bad input gets a structured error; the connection (where it can) and the
server keep running, and nothing stored is lost."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import websockets

from porch.client import Client, Message
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import MasterKey
from tests.integration.conftest import next_phone
from tests.integration.server import ServerProcess


class Raw:
    """A bare protocol connection, to send what a real client never would."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, server: ServerProcess, client: Client | None = None) -> Raw:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{server.port}/v1/ws", max_size=None, compression=None
        )
        raw = cls(ws)
        if client is not None:
            c = client.credentials
            await raw.send(
                {
                    "type": "auth",
                    "account": c.account_id,
                    "device": c.device_id,
                    "password": c.password,
                }
            )
            assert (await raw.recv())["type"] == "ready"
        return raw

    async def send(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def send_to(self, recipient: Client, client_id: str, ciphertext: str) -> None:
        """A send frame to the recipient's device 1 (fake ciphertext: the server never looks)."""
        await self.send(
            {
                "type": "send",
                "id": client_id,
                "to": recipient.account_id,
                "messages": [
                    {
                        "device": 1,
                        "registration": recipient.config.registration_id,
                        "kind": 1,
                        "body": ciphertext,
                    }
                ],
            }
        )

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        import asyncio

        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def expect_error(self, code: str) -> dict[str, Any]:
        frame = await self.recv()
        while frame["type"] in ("drained", "keys_low"):
            frame = await self.recv()
        assert frame["type"] == "error", frame
        assert frame["code"] == code, frame
        assert frame["message"]
        return frame

    async def alive(self) -> None:
        await self.send({"type": "ping", "n": 7})
        frame = await self.recv()
        while frame["type"] != "pong":
            frame = await self.recv()
        assert frame["n"] == 7


def body(n: int = 16) -> str:
    return base64.b64encode(b"\x01" * n).decode().rstrip("=")


@pytest.fixture
async def pair(register_client):  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    return alice, bob


async def test_malformed_frames_get_errors_and_the_connection_lives(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    raw = await Raw.open(server, alice)
    cases: list[tuple[Any, str]] = [
        ("{not json", "bad_frame"),
        ("[1, 2, 3]", "bad_frame"),
        ({"no": "type"}, "bad_frame"),
        ({"type": "teleport"}, "unknown_type"),
        ({"type": "ack", "ids": ["one"]}, "bad_frame"),
        ({"type": "ack", "ids": []}, "bad_frame"),
        ({"type": "send", "id": "has space", "to": bob.account_id, "messages": []}, "bad_frame"),
        ({"type": "send", "id": "m1", "to": "not-an-account", "messages": []}, "bad_frame"),
        (
            {
                "type": "send",
                "id": "m2",
                "to": bob.account_id,
                "messages": [{"device": 1, "registration": 1, "kind": 1, "body": "!!!"}],
            },
            "bad_frame",
        ),
        (
            {
                "type": "send",
                "id": "m3",
                "to": bob.account_id,
                "messages": [{"device": "1", "registration": 1, "kind": 1, "body": body()}],
            },
            "bad_frame",
        ),
        (
            {"type": "auth", "account": alice.account_id, "device": 1, "password": "x"},
            "already_authenticated",
        ),
        ("x" * 300_000, "frame_too_large"),
        (b"\xff\xfe binary garbage", "bad_frame"),
    ]
    for frame, code in cases:
        await raw.send(frame)
        error = await raw.expect_error(code)
        if isinstance(frame, dict) and frame.get("type") == "send" and code == "bad_frame":
            assert error.get("frame_type") == "send"
    await raw.alive()
    await raw.ws.close()


async def test_sends_are_checked_against_the_device_list(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    raw = await Raw.open(server, alice)
    reg = bob.config.registration_id
    unknown = "00000000-0000-4000-8000-000000000000"
    await raw.send(
        {
            "type": "send",
            "id": "u1",
            "to": unknown,
            "messages": [{"device": 1, "registration": 1, "kind": 1, "body": body()}],
        }
    )
    assert (await raw.expect_error("unknown_recipient"))["ref"] == "u1"

    await raw.send(
        {
            "type": "send",
            "id": "d1",
            "to": bob.account_id,
            "messages": [{"device": 2, "registration": reg, "kind": 1, "body": body()}],
        }
    )
    error = await raw.expect_error("mismatched_devices")
    assert (error["missing"], error["extra"], error["ref"]) == ([1], [2], "d1")

    await raw.send(
        {
            "type": "send",
            "id": "s1",
            "to": bob.account_id,
            "messages": [{"device": 1, "registration": reg + 1, "kind": 1, "body": body()}],
        }
    )
    assert (await raw.expect_error("stale_devices"))["stale"] == [1]

    # A replayed send (same client id) is acknowledged again but stored once.
    frame = {
        "type": "send",
        "id": "r1",
        "to": bob.account_id,
        "messages": [{"device": 1, "registration": reg, "kind": 1, "body": body(40)}],
    }
    await raw.send(frame)
    first = await raw.recv()
    await raw.send(frame)
    second = await raw.recv()
    assert first["type"] == second["type"] == "sent"
    assert first["ts"] == second["ts"]

    bob_raw = await Raw.open(server, bob)
    envelopes = []
    while True:
        f = await bob_raw.recv()
        if f["type"] == "drained":
            break
        if f["type"] == "envelope":
            envelopes.append(f)
    assert len(envelopes) == 1 and envelopes[0]["body"] == body(40)

    # Acknowledging someone else's envelope (or a made-up id) deletes nothing of theirs.
    await raw.send({"type": "ack", "ids": [envelopes[0]["id"], 999_999]})
    await raw.alive()
    await bob_raw.ws.close()
    bob_again = await Raw.open(server, bob)
    f = await bob_again.recv()
    assert f["type"] == "envelope" and f["id"] == envelopes[0]["id"]
    await bob_again.send({"type": "ack", "ids": [f["id"]]})
    assert (await bob_again.recv())["type"] == "drained"
    await bob_again.ws.close()
    await raw.ws.close()


async def test_authentication_failures(server: ServerProcess, pair: tuple[Client, Client]) -> None:
    alice, _ = pair
    raw = await Raw.open(server)
    await raw.send({"type": "ping"})
    await raw.expect_error("auth_required")
    await raw.send({"type": "auth", "account": alice.account_id, "device": 1, "password": "wrong"})
    await raw.expect_error("auth_failed")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await raw.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/v1/accounts/me")
        assert (r.status_code, r.json()["error"]["code"]) == (401, "auth_required")
        r = await http.get("/v1/accounts/me", auth=(f"{alice.account_id}.1", "wrong"))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "auth_failed")
        r = await http.get("/v1/accounts/me", headers={"authorization": "Basic %%%"})
        assert r.json()["error"]["code"] == "auth_failed"


async def test_oversize_frame_beyond_the_socket_limit_closes_only_that_connection(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    raw = await Raw.open(server, alice)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await raw.send("x" * (2 << 20))
        for _ in range(10):  # frames sent before the close (drained) come first
            await raw.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # Everyone else carries on.
    async with alice, bob:
        await alice.send_text("@bob", "still here")
        event = await bob.next_event(10)
        while not isinstance(event, Message):
            event = await bob.next_event(10)
        assert event.text == "still here"


async def test_http_validation_errors(server: ServerProcess, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    auth = alice.credentials.basic()
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as http:

        async def expect(
            method: str, path: str, status: int, code: str, **kw: Any
        ) -> dict[str, Any]:
            r = await http.request(method, path, **kw)
            assert r.status_code == status, r.text
            error: dict[str, Any] = r.json()["error"]
            assert error["code"] == code and error["message"]
            return error

        await expect(
            "POST",
            "/v1/registration/code",
            400,
            "bad_request",
            content=b"{oops",
            headers={"content-type": "application/json"},
        )
        await expect("POST", "/v1/registration/code", 400, "bad_request", json={"phone": 5})
        await expect(
            "POST",
            "/v1/registration/code",
            400,
            "bad_request",
            json={"phone": "+14155550100", "extra": 1},
        )
        await expect("POST", "/v1/registration/code", 400, "invalid_phone", json={"phone": "12345"})
        await expect(
            "POST", "/v1/registration/code", 400, "invalid_phone", json={"phone": "+15555550100"}
        )
        await expect(
            "POST",
            "/v1/registration/code",
            413,
            "request_too_large",
            content=b"x" * 300_000,
            headers={"content-type": "application/json"},
        )
        await expect(
            "PUT", "/v1/accounts/me/username", 400, "invalid_username", json={"username": "a!"}
        )
        await expect(
            "PUT", "/v1/accounts/me/username", 409, "username_taken", json={"username": "bob"}
        )
        await expect(
            "POST", "/v1/directory/lookup", 404, "not_found", json={"username": "nobody_here"}
        )
        await expect("POST", "/v1/directory/lookup", 400, "bad_request", json={})
        await expect(
            "POST", "/v1/keys/00000000-0000-4000-8000-000000000000/claim", 404, "not_found", json={}
        )
        await expect("GET", "/v1/no/such/route", 404, "not_found")

        # Keys: a device cannot publish keys signed for another account or device, nor
        # replace its identity, nor publish one-time keys it did not sign.
        machine = OlmMachine.create(b"k" * 32)
        master = MasterKey.generate()
        forged = master.sign_device(
            bob.account_id, 1, bob.config.registration_id, machine.curve25519, machine.ed25519
        )
        identity = {
            "master_key": master.public_b64,
            "curve25519": machine.curve25519,
            "ed25519": machine.ed25519,
            "signature": forged,
        }
        await expect("PUT", "/v1/keys", 409, "keys_exist", json={"identity": identity})
        stranger = OlmMachine.create(b"s" * 32)
        otk = stranger.generate_one_time_keys(1)[0]
        await expect(
            "PUT",
            "/v1/keys",
            400,
            "bad_signature",
            json={
                "one_time_keys": [
                    {"key_id": otk.key_id, "curve25519": otk.curve25519, "signature": otk.signature}
                ]
            },
        )
        await expect(
            "PUT",
            "/v1/keys",
            400,
            "bad_request",
            json={"one_time_keys": [{"key_id": "a", "curve25519": "short", "signature": "x"}]},
        )

    # Nothing was damaged: the two can still talk.
    async with alice, bob:
        await bob.send_text("@alice", "all good")
        event = await alice.next_event(10)
        while not isinstance(event, Message):
            event = await alice.next_event(10)
        assert event.text == "all good"


async def test_new_device_cannot_claim_keys_signed_for_another_account(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, _ = pair
    phone = next_phone()
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/v1/registration/code", json={"phone": phone})
        r = await http.post(
            "/v1/registration/verify", json={"phone": phone, "code": server.last_code(phone)}
        )
        reg = r.json()
        machine = OlmMachine.create(b"m" * 32)
        master = MasterKey.generate()
        # Signed for alice's account id: the binding does not match the uploader's account.
        signature = master.sign_device(
            alice.account_id, 1, reg["registration_id"], machine.curve25519, machine.ed25519
        )
        r = await http.put(
            "/v1/keys",
            auth=(f"{reg['account_id']}.1", reg["password"]),
            json={
                "identity": {
                    "master_key": master.public_b64,
                    "curve25519": machine.curve25519,
                    "ed25519": machine.ed25519,
                    "signature": signature,
                }
            },
        )
        assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_signature")


async def test_verification_codes_expire_after_attempts_and_cannot_be_replayed(
    server: ServerProcess,
) -> None:
    phone = next_phone()
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/v1/registration/code", json={"phone": phone})
        assert r.status_code == 202 and r.json()["expires_in"] == 600
        code = server.last_code(phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        r = await http.post("/v1/registration/verify", json={"phone": phone, "code": wrong})
        assert r.json()["error"]["code"] == "code_invalid"
        assert r.json()["error"]["attempts_left"] == 4
        r = await http.post("/v1/registration/verify", json={"phone": phone, "code": code})
        assert r.status_code == 200
        # Replaying the code that just worked fails.
        r = await http.post("/v1/registration/verify", json={"phone": phone, "code": code})
        assert r.json()["error"]["code"] == "code_invalid"

        await http.post("/v1/registration/code", json={"phone": phone})
        code = server.last_code(phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            r = await http.post("/v1/registration/verify", json={"phone": phone, "code": wrong})
            assert r.json()["error"]["code"] == "code_invalid"
        r = await http.post("/v1/registration/verify", json={"phone": phone, "code": code})
        assert (r.status_code, r.json()["error"]["code"]) == (429, "too_many_attempts")
    assert (await httpx.AsyncClient().get(f"{server.url}/healthz")).status_code == 200


async def test_chunked_oversize_body_and_wrong_method(server: ServerProcess) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 10_000

    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            "/v1/registration/code", content=chunks(), headers={"content-type": "application/json"}
        )
        assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")
        r = await http.delete("/v1/registration/code")
        assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
        assert (await http.get("/healthz")).status_code == 200


async def test_per_connection_send_limit(tmp_path, server_env) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.conftest import register

    env = dict(server_env, PORCH_LIMIT_SENDS_PER_CONNECTION="5/60")
    srv = ServerProcess(tmp_path / "limited", env=env)
    srv.start()
    try:
        alice = await register(srv, tmp_path / "a")
        bob = await register(srv, tmp_path / "b")
        raw = await Raw.open(srv, alice)
        for i in range(6):
            await raw.send_to(bob, f"l{i}", body())
        frames = [await raw.recv() for _ in range(6)]
        frames = [f for f in frames if f["type"] in ("sent", "error")]
        while len(frames) < 6:
            f = await raw.recv()
            if f["type"] in ("sent", "error"):
                frames.append(f)
        errors = [f for f in frames if f["type"] == "error"]
        assert len(errors) == 1 and errors[0]["code"] == "rate_limited"
        assert errors[0]["ref"] == "l5" and errors[0]["retry_after"] >= 1
        await raw.alive()
        await raw.ws.close()
    finally:
        srv.stop()


async def test_large_frame_before_auth_closes_1009_and_the_limit_lifts_at_ready(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    # Before `ready` a frame is at most PORCH_PREAUTH_MAX_FRAME_BYTES (4 KiB): an auth frame
    # is tiny, and a bigger one would otherwise sit in memory for an unauthenticated socket.
    raw = await Raw.open(server)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await raw.send("x" * 5000)
        for _ in range(5):
            await raw.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # After `ready` the first frame already has the full limit.
    raw = await Raw.open(server, alice)
    await raw.send_to(bob, "big1", body(150_000))
    frame = await raw.recv()
    while frame["type"] in ("drained", "keys_low"):
        frame = await raw.recv()
    assert (frame["type"], frame["id"]) == ("sent", "big1")
    await raw.send("x" * 300_000)
    await raw.expect_error("frame_too_large")
    await raw.alive()
    await raw.ws.close()
