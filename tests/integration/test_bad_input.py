"""Every kind of bad input gets a structured error; the connection (where it can) and the
server keep running, and nothing stored is lost."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from porch.client import Client, DecryptionFailed, Message
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import MasterKey
from porch.protocol.frames import MAX_SERVER_FRAME_BYTES
from porch.server.store.base import OutgoingCopy, OutgoingDestination
from porch.server.store.postgres import PostgresStore
from porch.server.store.sqlite import SqliteStore
from tests.integration.conftest import BOTH_STACKS, next_phone, server_env_of
from tests.integration.server import ServerProcess

# Also against the gateway on websockets (PORCH_WS_STACK=websockets; picows is the default).
server_env = pytest.fixture(params=BOTH_STACKS, name="server_env")(server_env_of)


class Raw:
    """A bare protocol connection, to send what a real client never would."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(
        cls, server: ServerProcess, client: Client | None = None, batch: bool = False
    ) -> Raw:
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
                    "batch": batch,
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
                "destinations": [
                    {
                        "account": recipient.account_id,
                        "devices": [
                            {
                                "device": 1,
                                "registration": recipient.config.registration_id,
                                "kind": 1,
                                "body": ciphertext,
                            }
                        ],
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
        (
            {
                "type": "send",
                "id": "has space",
                "destinations": [{"account": bob.account_id, "devices": []}],
            },
            "bad_frame",
        ),
        (
            {
                "type": "send",
                "id": "m1",
                "destinations": [{"account": "not-an-account", "devices": []}],
            },
            "bad_frame",
        ),
        (
            {
                "type": "send",
                "id": "m2",
                "destinations": [
                    {
                        "account": bob.account_id,
                        "devices": [{"device": 1, "registration": 1, "kind": 1, "body": "!!!"}],
                    }
                ],
            },
            "bad_frame",
        ),
        (
            {
                "type": "send",
                "id": "m3",
                "destinations": [
                    {
                        "account": bob.account_id,
                        "devices": [{"device": "1", "registration": 1, "kind": 1, "body": body()}],
                    }
                ],
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
            "destinations": [
                {
                    "account": unknown,
                    "devices": [{"device": 1, "registration": 1, "kind": 1, "body": body()}],
                }
            ],
        }
    )
    assert (await raw.expect_error("unknown_recipient"))["ref"] == "u1"

    await raw.send(
        {
            "type": "send",
            "id": "d1",
            "destinations": [
                {
                    "account": bob.account_id,
                    "devices": [{"device": 2, "registration": reg, "kind": 1, "body": body()}],
                }
            ],
        }
    )
    error = await raw.expect_error("mismatched_devices")
    assert error["ref"] == "d1"
    assert error["accounts"] == [
        {"account": bob.account_id, "missing": [1], "extra": [2], "stale": []}
    ]

    await raw.send(
        {
            "type": "send",
            "id": "s1",
            "destinations": [
                {
                    "account": bob.account_id,
                    "devices": [{"device": 1, "registration": reg + 1, "kind": 1, "body": body()}],
                }
            ],
        }
    )
    stale = await raw.expect_error("stale_devices")
    assert stale["accounts"] == [
        {"account": bob.account_id, "missing": [], "extra": [], "stale": [1]}
    ]

    # A replayed send (same client id) is acknowledged again but stored once.
    frame = {
        "type": "send",
        "id": "r1",
        "destinations": [
            {
                "account": bob.account_id,
                "devices": [{"device": 1, "registration": reg, "kind": 1, "body": body(40)}],
            }
        ],
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
        sid = (await http.post("/v1/registration/code", json={"phone": phone})).json()
        r = await http.post(
            "/v1/registration/verify",
            json={"session_id": sid["session_id"], "code": server.last_code(phone)},
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
        sid = r.json()["session_id"]
        code = server.last_code(phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        r = await http.post("/v1/registration/verify", json={"session_id": sid, "code": wrong})
        assert r.json()["error"]["code"] == "code_invalid"
        assert r.json()["error"]["attempts_left"] == 4
        r = await http.post("/v1/registration/verify", json={"session_id": sid, "code": code})
        assert r.status_code == 200
        # Replaying the code that just worked fails: its session has ended.
        r = await http.post("/v1/registration/verify", json={"session_id": sid, "code": code})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "session_not_found")

        r = await http.post("/v1/registration/code", json={"phone": phone})
        sid = r.json()["session_id"]
        code = server.last_code(phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            r = await http.post("/v1/registration/verify", json={"session_id": sid, "code": wrong})
            assert r.json()["error"]["code"] == "code_invalid"
        r = await http.post("/v1/registration/verify", json={"session_id": sid, "code": code})
        assert (r.status_code, r.json()["error"]["code"]) == (429, "too_many_attempts")
        for bad in ({"session_id": "x", "code": code}, {"phone": phone, "code": code}):
            r = await http.post("/v1/registration/verify", json=bad)
            assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")
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


# Issue 6: poison backlogs and unbounded integers ---------------------------------------------


async def _sent_all(raw: Raw, n: int) -> list[dict[str, Any]]:
    """The next n answers to sends (sent or error), skipping other frames."""
    answers: list[dict[str, Any]] = []
    while len(answers) < n:
        frame = await raw.recv(30)
        if frame["type"] in ("sent", "error"):
            answers.append(frame)
    return answers


async def _backlog(raw: Raw, until_drained: bool = True) -> list[tuple[int, dict[str, Any]]]:
    """Read a backlog to `drained` without acknowledging: (frame size, envelope) pairs."""
    got: list[tuple[int, dict[str, Any]]] = []
    while True:
        data = await asyncio.wait_for(raw.ws.recv(), 30)
        frame = json.loads(data)
        if frame["type"] == "drained":
            return got
        if frame["type"] == "envelope":
            got.append((len(data), frame))
        elif frame["type"] == "envelopes":
            got.extend((len(data), item) for item in frame["items"])


async def _messages_and_failures(
    client: Client, texts: int, timeout: float = 60
) -> tuple[list[Message], list[DecryptionFailed]]:
    messages: list[Message] = []
    failures: list[DecryptionFailed] = []
    async with asyncio.timeout(timeout):
        while len(messages) < texts:
            event = await client.next_event(timeout)
            if isinstance(event, Message):
                messages.append(event)
            elif isinstance(event, DecryptionFailed):
                failures.append(event)
    return messages, failures


async def test_a_backlog_of_large_envelopes_does_not_wedge_the_queue(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    # While Bob is offline, someone sends him 20 envelopes of ~250 KB, each inside the frame
    # limit; 64 of them to a frame would be ~5 MB, past the SDK's socket limit (1009, for ever).
    raw = await Raw.open(server, alice)
    for i in range(20):
        await raw.send_to(bob, f"big{i}", body(187_000))
    assert all(a["type"] == "sent" for a in await _sent_all(raw, 20))
    await raw.ws.close()

    # What the server sends fits the promise, in batches cut by bytes, oldest first.
    bob_raw = await Raw.open(server, bob, batch=True)
    backlog = await _backlog(bob_raw)
    assert len(backlog) == 20
    assert all(size <= MAX_SERVER_FRAME_BYTES for size, _ in backlog)
    assert [e["id"] for _, e in backlog] == sorted(e["id"] for _, e in backlog)
    await bob_raw.ws.close()

    async with alice, bob:
        for i in range(5):
            await alice.send_text("@bob", f"small {i}")
        messages, failures = await _messages_and_failures(bob, 5)
        assert [m.text for m in messages] == [f"small {i}" for i in range(5)]
        assert len(failures) == 20  # the fake ciphertexts, each a clear failure
        async with asyncio.timeout(10):
            while server.queue_depth():  # all 25 acknowledged
                await asyncio.sleep(0.05)


async def test_stored_envelopes_a_client_cannot_take_do_not_wedge_the_queue(
    tmp_path,
    server_env,  # type: ignore[no-untyped-def]
) -> None:
    from tests.integration.conftest import register

    srv = ServerProcess(tmp_path / "big", env=server_env)
    srv.start()
    try:
        alice = await register(srv, tmp_path / "a")
        bob = await register(srv, tmp_path / "b")
        srv.stop()

        def to_bob(copy: OutgoingCopy) -> OutgoingDestination:
            return OutgoingDestination(bob.account_id, (copy,))

        # Stored by other means than a send (an older server with a larger limit, a restore):
        # 5 MiB, far past both MAX_SERVER_FRAME_BYTES and the old SDK's 4 MiB socket limit.
        url = server_env.get("PORCH_DATABASE_URL")
        store = PostgresStore(url) if url else SqliteStore(srv.data_dir / "porch.db")
        async with store:
            copy = OutgoingCopy(1, 1, body(5 << 20))
            ts = int(time.time() * 1000)
            stored = await store.store_message(
                alice.account_id, 1, "huge", [to_bob(copy)], None, ts, ts + 86_400_000
            )
            # And one whose sender is no account id: the SDK's key lookup would fail for ever.
            await store.store_message(
                "not-an-account",
                1,
                "odd",
                [to_bob(OutgoingCopy(1, 1, body()))],
                None,
                ts,
                ts + 86_400_000,
            )
        huge_id = stored.envelopes[0].id
        srv.start()

        bob_raw = await Raw.open(srv, bob, batch=True)
        (size, marker), (_, odd) = await _backlog(bob_raw)
        assert odd["from"] == "not-an-account" and odd["body"] == body()
        assert size < 1024 and marker["id"] == huge_id and marker["too_large"] is True
        assert marker["from"] == alice.account_id and marker["ts"] == ts
        assert "body" not in marker and marker["size"] > 5 << 20
        await bob_raw.ws.close()

        async with alice, bob:
            await alice.send_text(bob.account_id, "after the huge one")
            messages, failures = await _messages_and_failures(bob, 1)
            assert [m.text for m in messages] == ["after the huge one"]
            assert [(f.sender, f.reason) for f in failures] == [
                (alice.account_id, "too_large"),
                ("not-an-account", "malformed"),
            ]
            async with asyncio.timeout(10):
                while srv.queue_depth():  # the marker was rejected: deleted, counted
                    await asyncio.sleep(0.05)
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'porch_envelopes_rejected_total{reason="too_large"} 1.0' in metrics
        assert 'porch_envelopes_rejected_total{reason="malformed"} 1.0' in metrics
        assert "porch_envelopes_too_large_total 2.0" in metrics  # to bob_raw, then the SDK
    finally:
        srv.stop()


BIG_INTEGERS = [2**63, 2**64, -1, 0, 10**40]


async def test_out_of_range_integers_get_structured_errors(
    server: ServerProcess, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    raw = await Raw.open(server, alice)
    for bad in BIG_INTEGERS:
        await raw.send({"type": "ack", "ids": [bad]})
        assert (await raw.expect_error("bad_frame"))["frame_type"] == "ack"
        await raw.send({"type": "reject", "ids": [bad], "reason": "malformed"})
        assert (await raw.expect_error("bad_frame"))["frame_type"] == "reject"
        await raw.send({"type": "ping", "n": bad - 1})  # -2 and -1 are out of range too
        await raw.expect_error("bad_frame")
    await raw.alive()
    await raw.ws.close()

    async with httpx.AsyncClient(base_url=server.url, auth=alice.credentials.basic()) as http:
        for path in ("9223372036854775808", "18446744073709551616", "2147483648", "0", "-1"):
            r = await http.delete(f"/v1/devices/{path}")
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "bad_request", r.text
        r = await http.post(f"/v1/keys/{bob.account_id}/claim", json={"devices": [2**63]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text
        r = await http.delete("/v1/devices/2")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
        assert (await http.get("/v1/devices")).status_code == 200


async def test_bad_acks_do_not_fail_other_users_sends(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    alice = await register_client()
    bob = await register_client()
    carol = await register_client()
    sender, spoiler = await Raw.open(server, alice), await Raw.open(server, carol)

    async def bad_acks() -> None:
        for i in range(300):
            await spoiler.send({"type": "ack", "ids": [1, BIG_INTEGERS[i % 3]]})
            await spoiler.expect_error("bad_frame")

    async def sends() -> list[dict[str, Any]]:
        for i in range(300):
            await sender.send_to(bob, f"s{i}", body(32))
        return await _sent_all(sender, 300)

    _, answers = await asyncio.gather(bad_acks(), sends())
    assert [a["type"] for a in answers] == ["sent"] * 300, [a for a in answers if "code" in a]
    await spoiler.alive()

    # And the server keeps delivering: Bob gets all 300 and acknowledges them.
    bob_raw = await Raw.open(server, bob, batch=True)
    ids: list[int] = []
    while len(ids) < 300:
        frame = await bob_raw.recv(30)
        items = frame["items"] if frame["type"] == "envelopes" else [frame]
        fresh = [e["id"] for e in items if e["type"] == "envelope"]
        if fresh:
            ids.extend(fresh)
            await bob_raw.send({"type": "ack", "ids": fresh})
    assert len(set(ids)) == 300
    await bob_raw.alive()
    async with asyncio.timeout(10):
        while server.queue_depth():
            await asyncio.sleep(0.05)
    for raw in (sender, spoiler, bob_raw):
        await raw.ws.close()


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
