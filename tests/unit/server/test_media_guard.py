"""The part PUT guards: an idle body times out, concurrent PUTs are capped and released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.services.media_guard import PutCounter, idle_limited


async def _trickle(gaps: list[float]) -> AsyncIterator[bytes]:
    for gap in gaps:
        await asyncio.sleep(gap)
        yield b"x"


async def test_a_body_passes_while_bytes_keep_coming() -> None:
    got = [c async for c in idle_limited(_trickle([0.01] * 5), 0.2)]
    assert got == [b"x"] * 5


async def test_a_body_that_stops_sending_times_out() -> None:
    got = []
    with pytest.raises(ProtocolError) as exc:
        async for chunk in idle_limited(_trickle([0.0, 0.0, 5.0]), 0.05):
            got.append(chunk)
    assert got == [b"x", b"x"]
    assert exc.value.code is ErrorCode.REQUEST_TIMEOUT


def test_puts_are_capped_per_upload_and_per_account_and_released() -> None:
    puts = PutCounter(per_upload=2, per_account=3)
    with puts.hold("u1", "a"), puts.hold("u1", "a"):
        with pytest.raises(ProtocolError) as slot, puts.hold("u1", "a"):
            pass
        assert slot.value.code is ErrorCode.MEDIA_BUSY and slot.value.details["limit"] == 2
        with puts.hold("u2", "a"):
            with pytest.raises(ProtocolError) as account, puts.hold("u3", "a"):
                pass
            assert account.value.details["limit"] == 3
            with puts.hold("u3", "b"):  # another account is not affected
                assert puts.in_flight() == 4
    assert puts.in_flight() == 0
    with pytest.raises(RuntimeError), puts.hold("u1", "a"):
        raise RuntimeError("a failed write releases its place")
    assert puts.in_flight() == 0
