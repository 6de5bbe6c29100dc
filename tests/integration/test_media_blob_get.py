"""The signed blob URL (filesystem backend) against a real server, SQLite and PostgreSQL:
every answer but the bytes has the JSON error shape — Range headers that do not parse or ask
for another unit are ignored (the whole blob, 200), one past the end is a JSON 416 with
`Content-Range: bytes */SIZE`, one range is 206 — and HEAD answers the headers only."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.integration.media_http import MediaHttp
from tests.integration.server import ServerProcess

SIZE = 1000


@pytest.fixture
async def blob(
    server: ServerProcess, register_client
) -> AsyncIterator[tuple[MediaHttp, str, bytes]]:  # type: ignore[no-untyped-def]
    http = MediaHttp(server, await register_client())
    data = os.urandom(SIZE)
    media_id = await http.upload(data)
    grant = await http.ok("GET", f"/v1/media/{media_id}")
    yield http, grant["url"], data
    await http.aclose()


@pytest.mark.parametrize("header", ["bytes=10-5", "bytes=abc", "items=0-5", "bytes=0-1,5-6"])
async def test_unusable_ranges_are_ignored(blob: tuple[MediaHttp, str, bytes], header: str) -> None:
    http, url, data = blob
    r = await http.plain.get(http.url(url), headers={"Range": header})
    assert r.status_code == 200 and r.content == data
    assert "content-range" not in r.headers


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
async def test_an_unsatisfiable_range_is_a_json_416(
    blob: tuple[MediaHttp, str, bytes], header: str
) -> None:
    http, url, _ = blob
    r = await http.plain.get(http.url(url), headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{SIZE}"
    error = r.json()["error"]
    assert error["code"] == "range_not_satisfiable" and error["size"] == SIZE


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=10-19", 10, 20), ("bytes=990-", 990, SIZE), ("bytes=-5", SIZE - 5, SIZE)],
)
async def test_one_range_is_partial_content(
    blob: tuple[MediaHttp, str, bytes], header: str, start: int, end: int
) -> None:
    http, url, data = blob
    r = await http.plain.get(http.url(url), headers={"Range": header})
    assert r.status_code == 206 and r.content == data[start:end]
    assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"


async def test_head_answers_headers_only(blob: tuple[MediaHttp, str, bytes]) -> None:
    http, url, _ = blob
    r = await http.plain.head(http.url(url))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["accept-ranges"] == "bytes"
    ranged = await http.plain.head(http.url(url), headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
    # A bad signature is refused on HEAD as on GET (the body, JSON, is not sent).
    forged = await http.plain.head(http.url(url[:-4] + "AAAA"))
    assert forged.status_code == 403 and forged.content == b""
    assert forged.headers["content-type"] == "application/json"
