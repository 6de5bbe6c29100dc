from __future__ import annotations

import logging

import httpx
import pytest

from porch.client.media_http import failure_of, human_size, resolve_url


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1536, "1.5 kB"),
        (104_857_600, "104.9 MB"),
        (120_000_000, "120 MB"),
        (3 * 10**12, "3 TB"),
    ],
)
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


def test_resolve_url_keeps_absolute_urls_and_joins_paths() -> None:
    base = httpx.URL("http://porch.test:8000")
    assert (
        str(resolve_url(base, "/v1/media/blobs/x?sig=1"))
        == "http://porch.test:8000/v1/media/blobs/x?sig=1"
    )
    s3 = "http://127.0.0.1:8333/bucket/x?X-Amz-Signature=1"
    assert str(resolve_url(base, s3)) == s3


def test_failure_of_reads_porch_errors_and_names_others() -> None:
    porch = httpx.Response(403, json={"error": {"code": "media_url_invalid", "message": "expired"}})
    assert failure_of(porch, "upload").code == "media_url_invalid"
    s3 = httpx.Response(400, text="<Error><Code>BadDigest</Code></Error>")
    err = failure_of(s3, "upload")
    assert err.code == "http_error" and "HTTP 400 to the upload" in str(err)


async def test_signed_url_queries_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    from porch.client import media_http

    transport = httpx.MockTransport(lambda _: httpx.Response(200))
    async with httpx.AsyncClient(transport=transport) as http:
        with caplog.at_level("INFO", logger="httpx"):
            await http.get("http://porch.test/v1/media/blobs/abc?exp=1&sig=SECRETSIG")
    text = caplog.text
    assert "HTTP Request" in text and "/v1/media/blobs/abc" in text
    assert "SECRETSIG" not in text and "redacted" in text
    assert any(
        isinstance(f, media_http.RedactSignedUrls) for f in logging.getLogger("httpx").filters
    )
