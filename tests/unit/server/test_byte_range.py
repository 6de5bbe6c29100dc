"""Range headers for blob GETs: one range served, the rest ignored or unsatisfiable."""

from __future__ import annotations

import pytest

from porch.server.api.byte_range import UNSATISFIABLE, ByteRange, parse_range

SIZE = 100


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=90-", ByteRange(90, 100)),
        ("bytes=90-500", ByteRange(90, 100)),
        ("bytes=-10", ByteRange(90, 100)),
        ("bytes=-500", ByteRange(0, 100)),
        ("BYTES = 5-5", ByteRange(5, 6)),
        ("bytes=99-99", ByteRange(99, 100)),
    ],
)
def test_satisfiable_ranges(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    assert parse_range(header, SIZE) is UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=10-5",  # last before first: invalid, so ignored
        "bytes=abc",
        "bytes=a-b",
        "items=0-5",
        "bytes=0-1,5-6",  # several ranges: not served, ignored
        "bytes=-",
        "bytes 0-5",
        "bytes=" + "9" * 19 + "-",
        "bytes=\u0661-\u0662",  # non-ASCII digits
    ],
)
def test_unusable_headers_are_ignored(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


def test_canonical_header() -> None:
    assert ByteRange(90, 100).header() == "bytes=90-99"
