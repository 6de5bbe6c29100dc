"""Media route inputs against a real server, SQLite and PostgreSQL: bodies are strict (no
coercion: "5", true or 5.0 is not a size, 1 is not an etag), every refusal has the JSON error
shape, and a malformed signed URL is 403 media_url_invalid however it is malformed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.media_http import MediaHttp
from tests.integration.server import ServerProcess


@pytest.fixture
async def alice(server: ServerProcess, register_client) -> AsyncIterator[MediaHttp]:  # type: ignore[no-untyped-def]
    http = MediaHttp(server, await register_client())
    yield http
    await http.aclose()


@pytest.mark.parametrize(
    "body",
    [
        {"size": "5"},
        {"size": True},
        {"size": 5.0},
        {"size": None},
        {"size": 5, "recipients": True},
        {"size": 5, "recipients": "2"},
        {"size": 5, "recipients": 2.0},
        [],
        "5",
    ],
)
async def test_an_upload_body_is_not_coerced(alice: MediaHttp, body: Any) -> None:
    await alice.refused("POST", "/v1/media/uploads", 400, "bad_request", json=body)


@pytest.mark.parametrize(
    "parts",
    [
        [{"n": "1", "etag": '"e"'}],
        [{"n": True, "etag": '"e"'}],
        [{"n": 1.0, "etag": '"e"'}],
        [{"n": 1, "etag": 5}],
        [{"n": 1, "etag": None}],
        [{"n": 1}],
        {"n": 1, "etag": '"e"'},
        None,
        "1",
    ],
)
async def test_a_completion_body_is_not_coerced(alice: MediaHttp, parts: Any) -> None:
    slot = await alice.slot(100)
    path = f"/v1/media/uploads/{slot['id']}/complete"
    await alice.refused("POST", path, 400, "bad_request", json={"parts": parts})


async def test_bodies_that_are_not_json_are_json_errors(alice: MediaHttp) -> None:
    headers = {"content-type": "application/json"}
    await alice.refused(
        "POST", "/v1/media/uploads", 400, "bad_request", content=b"{", headers=headers
    )
    await alice.refused("POST", "/v1/media/uploads", 400, "bad_request")


async def test_malformed_signed_urls_are_url_invalid(alice: MediaHttp) -> None:
    slot = await alice.slot(100)
    media_id = slot["id"]
    query = parse_qs(urlsplit(slot["parts"][0]["url"]).query)
    exp, sig = query["exp"][0], query["sig"][0]
    for url in (
        f"/v1/media/parts/{media_id}/1?exp={'9' * 30}&sig={sig}",
        f"/v1/media/parts/{media_id}/1?exp={exp}&sig={sig * 3}",
        f"/v1/media/parts/{media_id}/{'1' * 12}?exp={exp}&sig={sig}",
        f"/v1/media/parts/{media_id * 4}/1?exp={exp}&sig={sig}",
        f"/v1/media/parts/{media_id}/1?exp={exp}&exp={exp}&sig={sig}&sig=x",
    ):
        r = await alice.put(url, b"x" * 100)
        assert r.status_code == 403, (url, r.text)
        assert r.json()["error"]["code"] == "media_url_invalid"
    for url in (
        f"/v1/media/blobs/{media_id}?exp={'9' * 30}&sig={sig}",
        f"/v1/media/blobs/{media_id * 4}?exp={exp}&sig={sig}",
        f"/v1/media/blobs/{media_id}?exp={exp}&sig={sig * 3}",
    ):
        r = await alice.plain.get(alice.url(url))
        assert r.status_code == 403, (url, r.text)
        assert r.json()["error"]["code"] == "media_url_invalid"


async def test_other_methods_are_json_405s(alice: MediaHttp) -> None:
    slot = await alice.slot(100)
    url = alice.url(slot["parts"][0]["url"])
    for method in ("GET", "POST", "DELETE"):
        r = await alice.plain.request(method, url)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
