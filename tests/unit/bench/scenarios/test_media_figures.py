"""The media scenario's figures: medians over runs, and the notes on what held a run back."""

from __future__ import annotations

from typing import Any

from porch.bench.scenarios.media_clients import Phase
from porch.bench.scenarios.media_figures import load_figures, summary
from porch.bench.stats import MB

SIZE = 64 * MB


def _run(
    n: int, upload_s: float, server_grew: float = 5.0, busy: float = 0.1, others: float = 3.0
) -> dict[str, Any]:
    """One run's figures as Media._one makes them; the upload's server RSS growth, process
    CPU share and other processes' CPU are given."""
    phase = {"cpu_s": 1.0, "peak_rss_mb": 62.0, "rss_start_mb": 60.0, "wall_s": 2.0}
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
        "server": {"upload": phase | {"peak_rss_mb": 60 + server_grew}, "download": phase},
        "machine_others_pct_by_phase": {"upload": others, "download": 0.0},
        "load": {
            "upload": load_figures(Phase(wall_s=upload_s, cpu_s=busy * upload_s), 80.0),
            "download": load_figures(Phase(wall_s=1.0, cpu_s=0.1), 80.0),
        },
        "errors": [],
    }


def test_figures_are_medians_and_keep_every_run() -> None:
    out = summary([_run(1, 1.0), _run(2, 4.0, others=9.0), _run(3, 2.0)], SIZE)
    assert out["upload_s"] == 2.0 and out["upload_mb_s"] == 32.0
    assert (
        out["machine_others_pct_by_phase"]["upload"] == 3.0
        and out["server"]["upload"]["cpu_s"] == 1
    )
    assert "store" not in out  # the filesystem backend: no store process to sample
    assert [r["run"] for r in out["per_run"]] == [1, 2, 3]
    assert out["digest_ok"] and out["errors"] == 0 and out["behind"] == []


def test_figures_say_what_held_a_run_back() -> None:
    out = summary([_run(1, 1.0, server_grew=80.0, busy=0.95, others=60.0)], SIZE)
    notes = " | ".join(out["behind"])
    assert "did not stream" in notes
    assert "the upload process used 95% of a core" in notes
    assert "the machine was busy" in notes
    assert "download" not in notes  # that phase was fine


def test_a_bad_digest_fails_the_summary() -> None:
    bad = _run(1, 1.0) | {"digest_ok": False, "errors": ["digest differs"]}
    out = summary([bad], SIZE)
    assert (
        not out["digest_ok"] and out["errors"] == 1 and out["error_samples"] == ["digest differs"]
    )
