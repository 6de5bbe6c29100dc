"""The S3 backend's start-up check of the bucket's CORS rules (src/porch/server/media/s3_cors.py)
against a real SeaweedFS, which implements PutBucketCors/GetBucketCors: a rule that hides ETag
is a warning sentence in the server's log at start, a good rule says nothing, and the server
starts either way. The browser side of the same rules: tests/e2e/test_web_media_s3.py."""

# ruff: noqa: F811 (the seaweed fixture imported from seaweed.py is a parameter here)

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from porch.server.media.s3 import S3Blobs
from porch.server.media.s3_cors import check_bucket_cors, read_cors_rules
from tests.integration.seaweed import Seaweed, seaweed  # noqa: F401 (fixture)
from tests.integration.test_media_s3 import bucket, start  # noqa: F401 (fixture)

RULE: dict[str, Any] = {
    "AllowedOrigins": ["https://porch.example"],
    "AllowedMethods": ["PUT", "GET"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3600,
}


def blobs(store: Seaweed, bucket: str) -> S3Blobs:
    return S3Blobs(store.endpoint, bucket, "us-east-1", store.access_key, store.secret_key)


def set_rule(store: Seaweed, bucket: str, rule: dict[str, Any] | None) -> None:
    s3 = store.client()
    s3.create_bucket(Bucket=bucket)
    if rule is not None:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})


async def test_the_check_reads_the_rules_the_store_holds(
    seaweed: Seaweed, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "porch.media")
    set_rule(seaweed, bucket, None)
    async with blobs(seaweed, bucket) as component:
        client = component._client
        assert await read_cors_rules(client, bucket) is None
        [none] = await check_bucket_cors(client, bucket)
        assert "has no CORS rule" in none
        seaweed.client().put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [RULE]})
        [rule] = await read_cors_rules(client, bucket) or []
        assert rule["ExposeHeaders"] == ["ETag"]
        assert await check_bucket_cors(client, bucket) == []
        # A store that refuses the call (here: a bucket that is not there) is one info line.
        caplog.clear()
        assert await check_bucket_cors(client, f"{bucket}-missing") == []
        [record] = caplog.records
        assert record.levelno == logging.INFO and "check by hand" in record.getMessage()


def test_a_rule_that_hides_etag_is_said_at_start_and_the_server_still_serves(
    tmp_path: Path, seaweed: Seaweed, bucket: str
) -> None:
    set_rule(seaweed, bucket, {k: v for k, v in RULE.items() if k != "ExposeHeaders"})
    srv = start(tmp_path, seaweed, bucket)
    try:
        log = srv.log_path.read_text(errors="replace")
        assert (
            f"The S3 bucket {bucket}'s CORS rule for PUT does not expose the ETag header, so "
            "browser uploads fail" in log
        )
        assert "Traceback" not in log
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
    finally:
        srv.stop()


def test_a_good_rule_says_nothing_at_start(tmp_path: Path, seaweed: Seaweed, bucket: str) -> None:
    set_rule(seaweed, bucket, RULE)
    srv = start(tmp_path, seaweed, bucket)
    try:
        assert "CORS" not in srv.log_path.read_text(errors="replace")
    finally:
        srv.stop()
