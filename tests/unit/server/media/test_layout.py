"""Part arithmetic of an upload (spec §6); blob_size is tested with the cipher."""

from __future__ import annotations

import pytest

from porch.server.media.layout import (
    MAX_PARTS,
    choose_part_size,
    in_units,
    part_count,
    part_span,
    valid_media_id,
)


def test_parts_cover_the_blob_exactly() -> None:
    size, part = 10 * 1024 + 7, 1024
    assert part_count(size, part) == 11
    spans = [part_span(size, part, n) for n in range(1, 12)]
    assert spans[0] == (0, 1024) and spans[-1] == (10 * 1024, 7)
    assert sum(length for _, length in spans) == size
    with pytest.raises(ValueError):
        part_span(size, part, 12)
    with pytest.raises(ValueError):
        part_span(size, part, 0)
    assert part_count(1024, 1024) == 1 and part_span(1024, 1024, 1) == (0, 1024)


def test_the_part_size_grows_past_ten_thousand_parts() -> None:
    assert choose_part_size(8 << 20, 8 << 20) == 8 << 20
    big = 200 << 30  # 200 GiB at 8 MiB would be 25 600 parts
    chosen = choose_part_size(big, 8 << 20)
    assert part_count(big, chosen) <= MAX_PARTS and chosen % (1 << 20) == 0


def test_media_ids_and_units() -> None:
    assert valid_media_id("AbCdEfGhIjKlMnOpQr_-12")
    for bad in (
        "",
        "A" * 21,
        "A" * 23,
        "../../etc/passwdxxxxxx",
        "AAAAAAAAAAAAAAAAAAAAA=",
        "A" * 21 + "/",
    ):
        assert not valid_media_id(bad)
    assert in_units(999) == "999 bytes"
    assert in_units(100 * 1024 * 1024) == "104.9 MB"
    assert in_units(2_000_000_000) == "2 GB"
