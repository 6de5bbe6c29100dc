"""deploy/nginx/porch.conf lets attachment parts and blobs through (docs/deploy.md, section 3):
a part PUT fits the body limit and streams, a blob download is not buffered."""

from __future__ import annotations

import re
from pathlib import Path

from porch.server.settings import Settings

CONF = Path(__file__).parents[3] / "deploy" / "nginx" / "porch.conf"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _location(path: str) -> dict[str, str]:
    """The directives of one `location PATH { ... }` block (no nested blocks in this file)."""
    text = CONF.read_text()
    found = re.search(r"location\s+" + re.escape(path) + r"\s*\{([^}]*)\}", text)
    assert found is not None, f"no location {path} in {CONF}"
    lines = (ln.split("#")[0].strip().rstrip(";") for ln in found.group(1).splitlines())
    return dict(ln.split(None, 1) for ln in lines if ln)


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * _UNITS[unit]


def test_parts_fit_the_body_limit_and_stream_to_the_node() -> None:
    parts = _location("/v1/media/parts/")
    part = Settings.model_fields["media_part_bytes"].default
    assert _bytes(parts["client_max_body_size"]) >= part + (1 << 20)  # the part plus slack
    assert parts["proxy_request_buffering"] == "off"
    assert parts["proxy_pass"] == "http://porch_nodes"


def test_blobs_stream_out_unbuffered() -> None:
    blobs = _location("/v1/media/blobs/")
    assert blobs["proxy_buffering"] == "off"
    assert blobs["proxy_pass"] == "http://porch_nodes"


def test_other_requests_keep_the_small_limit() -> None:
    head = CONF.read_text().split("location")[0]
    sizes = re.findall(r"client_max_body_size\s+(\w+);", head)
    assert [_bytes(s) for s in sizes] == [1 << 20]
