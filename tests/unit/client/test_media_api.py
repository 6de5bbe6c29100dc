"""The media routes' answers are bounded before the engine trusts them (spec §6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from porch.client.api import HttpApi
from porch.client.errors import ServerError
from porch.client.media_api import MAX_PARTS, MediaApi

BASE = "http://porch.test"


def _api(body: Any, status: int = 200) -> MediaApi:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, json=body))
    return MediaApi(HttpApi(BASE, transport=transport))


def _slot(**over: Any) -> dict[str, Any]:
    return {"id": "x" * 22, "part_size": 65536, "parts": [{"n": 1, "url": "/p/1"}], **over}


async def test_a_slot_is_read() -> None:
    slot = await _api(_slot()).create_upload(100, recipients=3)
    assert (slot.part_size, slot.urls) == (65536, {1: "/p/1"})


@pytest.mark.parametrize(
    "bad",
    [
        {"part_size": 0},
        {"part_size": "8M"},
        {"part_size": True},
        {"parts": [{"n": 0, "url": "/p"}]},
        {"parts": [{"n": MAX_PARTS + 1, "url": "/p"}]},
        {"parts": [{"n": 1, "url": "x" * 9000}]},
        {"parts": [{"n": 1}]},
        {"parts": [{"n": 1, "url": "/p"}] * (MAX_PARTS + 1)},
        {"received": ["1"]},
    ],
)
async def test_malformed_slots_are_refused_with_bad_response(bad: dict[str, Any]) -> None:
    with pytest.raises(ServerError) as err:
        await _api(_slot(**bad)).upload_status("x" * 22)
    assert err.value.code == "bad_response"
    assert "compatible Porch version" in str(err.value)


async def test_received_parts_may_carry_etags() -> None:
    body = _slot(received=[1, {"n": 2, "etag": '"ab"'}], parts=[{"n": 3, "url": "/p/3"}])
    slot = await _api(body).upload_status("x" * 22)
    assert slot.received == {1, 2} and slot.etags == {2: '"ab"'} and set(slot.urls) == {3}


async def test_recipients_are_clamped_to_the_servers_range() -> None:
    seen: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(201, json=_slot())

    api = MediaApi(HttpApi(BASE, transport=httpx.MockTransport(handle)))
    await api.create_upload(100, recipients=9999)
    await api.create_upload(100, recipients=None)
    assert b'"recipients":5000' in seen[0].replace(b" ", b"")
    assert b"recipients" not in seen[1]
