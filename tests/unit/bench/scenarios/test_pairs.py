"""pairs: options that cannot run are refused with what the bounds are, before anything starts."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from porch.bench.scenarios.base import UsageError
from porch.bench.scenarios.pairs import MAX_MESSAGES, Pairs


def _pairs(**kw: Any) -> Pairs:
    args = {"pairs": 4, "messages": 5000, "window": 64, "payload_bytes": 300, "warmup": 200}
    return Pairs(argparse.Namespace(**(args | kw), rate=None))


def test_the_defaults_pass() -> None:
    _pairs().check()
    _pairs(messages=MAX_MESSAGES - 200).check()


@pytest.mark.parametrize(
    "kw",
    [
        {"messages": 0},
        {"messages": 2**63},
        {"messages": MAX_MESSAGES - 199},
        {"warmup": 2**63},
        {"pairs": 10**6},
        {"window": 2**63},
    ],
)
def test_check_refuses_what_cannot_run(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        _pairs(**kw).check()
