"""The media scenario's options, server settings and the S3 store's sampling (no server)."""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

import pytest

from porch.bench.scenarios.base import UsageError
from porch.bench.scenarios.media import Media
from porch.bench.stats import MB


def _scenario(**kw: Any) -> Media:
    args = {"size_mb": 64, "runs": 1, "backend": "fs", "s3_endpoint": None} | kw
    return Media(argparse.Namespace(**args, s3_bucket="b", timeout=60.0))


@pytest.mark.parametrize(
    "kw", [{"size_mb": 0}, {"runs": 0}, {"backend": "s3"}, {"size_mb": 2**20 + 1}]
)
def test_check_refuses_what_cannot_run(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        _scenario(**kw).check()


def test_env_fits_every_run_under_the_server_limits() -> None:
    env = _scenario(size_mb=1024, runs=3).env()
    assert int(env["PORCH_MEDIA_MAX_BYTES"]) >= 1024 * MB
    # Each blob is at most 5% bigger than its file (spec §1's buckets) plus the IV and MAC.
    assert int(env["PORCH_MEDIA_QUOTA_BYTES_PER_DAY"]) >= 3 * (1024 * MB * 1.05 + 64)
    s3 = _scenario(backend="s3", s3_endpoint="http://127.0.0.1:8333").env()
    assert s3["PORCH_MEDIA_BACKEND"] == "s3" and s3["PORCH_S3_ENDPOINT"].endswith(":8333")


def test_with_s3_the_store_listening_on_the_endpoint_is_sampled_too() -> None:
    with socket.socket() as listener:  # this process stands in for the S3 store
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        s3 = _scenario(backend="s3", s3_endpoint=f"http://127.0.0.1:{port}")
        assert s3._store_pids() == [os.getpid()]
    assert _scenario()._store_pids() == []  # fs: Porch holds the bytes itself
    assert ("store cpu up s", "store.upload.cpu_s") in s3.columns()


def test_a_bad_digest_fails_the_run() -> None:
    ok = {"digest_ok": True, "errors": 0, "left_in_store": 0}
    assert _scenario().ok(ok)
    assert not _scenario().ok(ok | {"digest_ok": False})
