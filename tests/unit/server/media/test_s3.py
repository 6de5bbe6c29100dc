"""The S3 backend's start-up checks (its transfers run against SeaweedFS in
tests/integration/test_media_s3.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from porch.server.media.s3 import S3Blobs
from porch.server.settings import Settings

S3 = {
    "media_backend": "s3",
    "s3_endpoint": "http://127.0.0.1:1",
    "s3_bucket": "b",
    "s3_access_key": "a",
    "s3_secret_key": "s",
}


def test_complete_settings_make_a_backend(tmp_path: Path) -> None:
    assert S3Blobs.from_settings(Settings(data_dir=tmp_path, **S3)).name == "s3"


@pytest.mark.parametrize("missing", ["s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key"])
def test_each_s3_setting_is_required(tmp_path: Path, missing: str) -> None:
    with pytest.raises(ValueError, match="PORCH_S3_ENDPOINT, PORCH_S3_BUCKET"):
        S3Blobs.from_settings(Settings(data_dir=tmp_path, **{**S3, missing: None}))


def test_parts_under_5_mib_are_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, media_part_bytes=(5 << 20) - 1, **S3)
    with pytest.raises(ValueError, match="at least 5242880"):
        S3Blobs.from_settings(settings)
