"""The media scenario's options, server settings and reading of the figures (no server)."""

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


def _run(n: int, upload_s: float, server_grew: float = 5.0, cpu_s: float = 0.1) -> dict[str, Any]:
    phase = {"cpu_s": 1.0, "peak_rss_mb": 60 + server_grew, "rss_start_mb": 60.0, "wall_s": 2.0}
    return {
        "run": n,
        "copy_s": 1.0,
        "copy_mb_s": 64.0,
        "upload_s": upload_s,
        "upload_mb_s": round(64 / upload_s, 1),
        "arrive_s": 0.01,
        "download_s": 1.0,
        "download_mb_s": 64.0,
        "upload_vs_copy": round(1 / upload_s, 3),
        "download_vs_copy": 1.0,
        "digest_ok": True,
        "server": {"upload": phase, "download": phase},
        "load": {
            "upload": {"cpu_s": cpu_s, "peak_rss_mb": 80.0},
            "download": {"cpu_s": 0.1, "peak_rss_mb": 80.0},
        },
        "errors": [],
    }


def test_figures_are_medians_and_keep_every_run() -> None:
    out = _scenario(runs=3)._figures([_run(1, 1.0), _run(2, 4.0), _run(3, 2.0)])
    assert out["upload_s"] == 2.0 and out["upload_mb_s"] == 32.0
    assert [r["run"] for r in out["per_run"]] == [1, 2, 3]
    assert out["digest_ok"] and out["errors"] == 0 and out["behind"] == []


def test_figures_say_when_a_file_sat_in_memory_or_the_client_set_the_pace() -> None:
    out = _scenario()._figures([_run(1, 1.0, server_grew=80.0, cpu_s=0.95)])
    assert any("did not stream" in note for note in out["behind"])
    assert any("client's CPU set the pace" in note for note in out["behind"])


def test_a_bad_digest_fails_the_result() -> None:
    bad = _run(1, 1.0) | {"digest_ok": False, "errors": ["digest differs"]}
    out = _scenario()._figures([bad])
    assert not out["digest_ok"] and out["errors"] == 1
    assert not _scenario().ok(out)


def test_with_s3_the_store_listening_on_the_endpoint_is_sampled_too() -> None:
    with socket.socket() as listener:  # this process stands in for the S3 store
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        s3 = _scenario(backend="s3", s3_endpoint=f"http://127.0.0.1:{port}")
        assert s3._store_pids() == [os.getpid()]
    assert _scenario()._store_pids() == []  # fs: Porch holds the bytes itself
    assert ("store cpu up s", "store.upload.cpu_s") in s3.columns()
