"""What the start-up check says about a bucket's CORS rules (src/porch/server/media/s3_cors.py;
against a real SeaweedFS in tests/integration/test_media_s3_cors.py)."""

from __future__ import annotations

from typing import Any

import pytest

from porch.server.media.s3_cors import cors_problems

GOOD: dict[str, Any] = {
    "AllowedOrigins": ["https://porch.example"],
    "AllowedMethods": ["PUT", "GET"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3600,
}


def without(field: str, **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in GOOD.items() if k != field}, **changes}


@pytest.mark.parametrize(
    "rules",
    [
        [GOOD],
        [without("ExposeHeaders", ExposeHeaders=["etag", "Content-Length"])],  # any case
        [without("ExposeHeaders", ExposeHeaders=["*"])],
        # Uploads and downloads in rules of their own.
        [
            without("AllowedMethods", AllowedMethods=["PUT"]),
            without("AllowedMethods", AllowedMethods=["get"]),
        ],
    ],
)
def test_rules_that_let_browsers_upload_and_download_say_nothing(rules: list[Any]) -> None:
    assert cors_problems("media", rules) == []


@pytest.mark.parametrize("rules", [None, []])
def test_no_rule_at_all_is_said_with_where_to_find_one(rules: list[Any] | None) -> None:
    [sentence] = cors_problems("media", rules)
    assert sentence.startswith("The S3 bucket media has no CORS rule")
    assert "docs/deploy.md" in sentence and sentence.endswith(".")


def test_a_put_rule_that_hides_etag_says_uploads_fail() -> None:
    [sentence] = cors_problems("media", [without("ExposeHeaders")])
    assert sentence.startswith("The S3 bucket media's CORS rule for PUT does not expose the ETag")
    assert "browser uploads fail" in sentence and sentence.endswith(".")
    # ETag exposed only on a GET rule does not help the PUTs.
    get_only = without("AllowedMethods", AllowedMethods=["GET"])
    rules = [without("ExposeHeaders", AllowedMethods=["PUT"]), get_only]
    assert [s[:60] for s in cors_problems("media", rules)] == [sentence[:60]]


def test_missing_methods_are_each_named() -> None:
    [put] = cors_problems("media", [without("AllowedMethods", AllowedMethods=["GET"])])
    assert "allows PUT, so browsers cannot upload" in put
    [get] = cors_problems("media", [without("AllowedMethods", AllowedMethods=["PUT"])])
    assert "allows GET, so browsers cannot download" in get
    both = cors_problems("media", [without("AllowedMethods", AllowedMethods=["HEAD"])])
    assert len(both) == 2


def test_malformed_fields_count_as_absent() -> None:
    odd = without("AllowedMethods", AllowedMethods=[None, 3, "PUT "], ExposeHeaders="ETag")
    # "PUT " counts (stores trim it), a bare string for a list does not.
    problems = cors_problems("media", [odd])
    assert any("does not expose the ETag" in p for p in problems)
    assert any("allows GET" in p for p in problems)
