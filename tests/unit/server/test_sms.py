"""Verification-code providers: Twilio Verify over a mocked HTTP transport, and the console."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.providers.sms import ConsoleSms, TwilioVerify

SID = "AC0123"
TOKEN = "tok3n"
SERVICE = "VA9876"
PHONE = "+14155550100"
BASE = f"https://verify.twilio.com/v2/Services/{SERVICE}"


class Recorder:
    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    def form(self, i: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[i].content.decode())


def _twilio(respond: Callable[[httpx.Request], httpx.Response]) -> tuple[TwilioVerify, Recorder]:
    recorder = Recorder(respond)
    return TwilioVerify(SID, TOKEN, SERVICE, transport=httpx.MockTransport(recorder)), recorder


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def test_twilio_owns_the_code() -> None:
    assert TwilioVerify.owns_code is True
    assert TwilioVerify.name == "twilio"


@pytest.mark.parametrize("status", [200, 201])
async def test_start_posts_verification(status: int) -> None:
    sms, rec = _twilio(lambda r: httpx.Response(status, json={"status": "pending"}))
    await sms.start(PHONE, "123456")
    await sms.aclose()
    assert len(rec.requests) == 1
    req = rec.requests[0]
    assert req.method == "POST"
    assert str(req.url) == f"{BASE}/Verifications"
    assert req.headers["authorization"] == _basic()
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert rec.form() == {"To": [PHONE], "Channel": ["sms"]}
    # Twilio generates the code: ours is never sent.
    assert b"123456" not in req.content


@pytest.mark.parametrize("status", [400, 429, 500, 503])
async def test_start_failure_is_unavailable(status: int) -> None:
    sms, _ = _twilio(lambda r: httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(ProtocolError) as info:
        await sms.start(PHONE, "")
    assert info.value.code == ErrorCode.UNAVAILABLE
    assert str(status) in info.value.message
    await sms.aclose()


async def test_check_posts_code_and_approves() -> None:
    sms, rec = _twilio(lambda r: httpx.Response(200, json={"status": "approved"}))
    assert await sms.check(PHONE, "654321") is True
    await sms.aclose()
    req = rec.requests[0]
    assert req.method == "POST"
    assert str(req.url) == f"{BASE}/VerificationCheck"
    assert req.headers["authorization"] == _basic()
    assert rec.form() == {"To": [PHONE], "Code": ["654321"]}


@pytest.mark.parametrize("status", ["pending", "canceled", "denied"])
async def test_check_not_approved(status: str) -> None:
    sms, _ = _twilio(lambda r: httpx.Response(200, json={"status": status}))
    assert await sms.check(PHONE, "000000") is False
    await sms.aclose()


async def test_check_404_is_false() -> None:
    sms, _ = _twilio(lambda r: httpx.Response(404, json={"code": 20404}))
    assert await sms.check(PHONE, "000000") is False
    await sms.aclose()


@pytest.mark.parametrize("status", [400, 401, 500, 502])
async def test_check_server_error_is_unavailable(status: int) -> None:
    sms, _ = _twilio(lambda r: httpx.Response(status))
    with pytest.raises(ProtocolError) as info:
        await sms.check(PHONE, "000000")
    assert info.value.code == ErrorCode.UNAVAILABLE
    await sms.aclose()


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_transport_error_is_unavailable(error: httpx.HTTPError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    sms, _ = _twilio(fail)
    for call in (sms.start(PHONE, ""), sms.check(PHONE, "000000")):
        with pytest.raises(ProtocolError) as info:
            await call
        assert info.value.code == ErrorCode.UNAVAILABLE
        assert type(error).__name__ in info.value.message
        assert TOKEN not in info.value.message
    await sms.aclose()


async def test_console_writes_json_lines(tmp_path: Path) -> None:
    outbox = tmp_path / "nested" / "sms-outbox.jsonl"
    sms = ConsoleSms(outbox)
    assert sms.owns_code is False
    await sms.start(PHONE, "123456")
    await sms.start("+14155550101", "000042")
    await sms.aclose()
    lines = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert [(x["phone"], x["code"]) for x in lines] == [
        (PHONE, "123456"),
        ("+14155550101", "000042"),
    ]
    for line in lines:
        assert set(line) == {"phone", "code", "ts"}
        assert isinstance(line["ts"], int)
        assert line["ts"] > 1_600_000_000_000  # milliseconds


async def test_console_does_not_check_codes(tmp_path: Path) -> None:
    sms = ConsoleSms(tmp_path / "outbox.jsonl")
    with pytest.raises(AssertionError):
        await sms.check(PHONE, "123456")


async def test_check_non_json_answer_is_unavailable() -> None:
    sms, _ = _twilio(lambda r: httpx.Response(200, text="<html>gateway</html>"))
    try:
        with pytest.raises(ProtocolError) as info:
            await sms.check(PHONE, "000000")
        assert info.value.code == ErrorCode.UNAVAILABLE
    finally:
        await sms.aclose()
