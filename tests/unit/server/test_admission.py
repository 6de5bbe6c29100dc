"""Admission of unauthenticated WebSocket connections: per-address and total caps."""

from __future__ import annotations

import pytest

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.admission import Admission


def test_per_address_cap_and_release() -> None:
    admission = Admission(per_address=2, total=10)
    first, second = admission.admit("a"), admission.admit("a")
    with pytest.raises(ProtocolError) as refused:
        admission.admit("a")
    assert refused.value.code == ErrorCode.RATE_LIMITED and refused.value.details["retry_after"]
    other = admission.admit("b")  # another address is not affected
    assert admission.waiting == 3
    first.release()
    first.release()  # idempotent: a place is given back once
    assert admission.waiting == 2
    third = admission.admit("a")
    for ticket in (second, third, other):
        ticket.release()
    assert admission.waiting == 0
    assert admission._counts == {}  # no address is remembered once its sockets are gone


def test_total_cap() -> None:
    admission = Admission(per_address=5, total=3)
    tickets = [admission.admit(address) for address in "abc"]
    with pytest.raises(ProtocolError) as refused:
        admission.admit("d")
    assert refused.value.code == ErrorCode.UNAVAILABLE
    tickets[0].release()
    admission.admit("d")
