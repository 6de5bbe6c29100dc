"""The figures of ``porch bench media``: a run's rates, the medians over runs, and the notes on
what held a run back (a file that sat in memory, a CPU-bound client, a busy machine)."""

from __future__ import annotations

import statistics
from typing import Any

from porch.bench import cpu
from porch.bench.scenarios.base import lookup
from porch.bench.scenarios.media_clients import Phase
from porch.bench.stats import MB

PHASES = ("upload", "download")
# RSS growth that means the file sat in memory: over this share of it, and over a floor that
# buffers, caches and an allocator's arenas reach without holding the file (small test files).
NOT_STREAMING = 0.25
NOT_STREAMING_FLOOR_MB = 64.0
CLIENT_BASE_MB = 256.0  # an SDK process's RSS without any file (Python, vodozemac, Pillow)
MEDIANS = (  # per-run figures whose median is a top-level figure
    *("copy_mb_s", "upload_mb_s", "download_mb_s", "upload_vs_copy", "download_vs_copy"),
    *("copy_s", "upload_s", "download_s", "arrive_s", "upload_transfer_s", "download_transfer_s"),
)
SAMPLED = ("cpu_s", "peak_rss_mb", "rss_start_mb", "wall_s")  # of the server's (store's) phases


def mb_s(size: int, seconds: float) -> float | None:
    return round(size / MB / seconds, 1) if seconds > 0 else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def verdict(run: dict[str, Any]) -> str:
    if run["digest_ok"]:
        return "ok"
    return "not checked" if run["download_mb_s"] is None else "DIFFERS"


def load_figures(phase: Phase, peak_rss_mb: float) -> dict[str, Any]:
    """A load process's figures over its timed call (cpu.load_figures: client_bound...)."""
    return cpu.load_figures([phase.cpu_s], phase.wall_s, 1) | {"peak_rss_mb": peak_rss_mb}


def summary(runs: list[dict[str, Any]], size: int) -> dict[str, Any]:
    """Medians over ``runs`` (each run's figures are kept under ``per_run``) and the notes."""

    def median(dotted: str) -> float | None:
        values = [v for r in runs if isinstance(v := lookup(r, dotted), int | float)]
        return round(statistics.median(values), 3) if values else None

    def by_phase(group: str, keys: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
        return {phase: {k: median(f"{group}.{phase}.{k}") for k in keys} for phase in PHASES}

    samples = [e for r in runs for e in r["errors"]]
    return {
        "size_bytes": size,
        "runs": len(runs),
        **{k: median(k) for k in MEDIANS},
        **{side: by_phase(side, SAMPLED) for side in ("server", "store") if side in runs[0]},
        "load": by_phase("load", ("cpu_s", "peak_rss_mb", "cpu_pct")),
        # Per phase (report.py words a top-level machine_others_pct for message rates).
        "machine_others_pct_by_phase": {
            p: median(f"machine_others_pct_by_phase.{p}") for p in PHASES
        },
        "digest_ok": all(r["digest_ok"] for r in runs),
        "errors": len(samples),
        "error_samples": samples[:5],
        "per_run": runs,
        "behind": behind(runs, size),
    }


def behind(runs: list[dict[str, Any]], size: int) -> list[str]:
    notes: list[str] = []
    size_mb = size / MB
    limit = max(NOT_STREAMING * size_mb, NOT_STREAMING_FLOOR_MB)
    for r in runs:
        for phase, server in r["server"].items():
            load = r["load"][phase]
            grew = server["peak_rss_mb"] - server["rss_start_mb"]
            if grew > limit:
                notes.append(
                    f"run {r['run']}: the server's RSS grew by {grew:.0f} MB during the "
                    f"{phase} of a {size_mb:.0f} MiB file: it did not stream"
                )
            if load["peak_rss_mb"] > limit + CLIENT_BASE_MB:
                notes.append(
                    f"run {r['run']}: the {phase} process peaked at "
                    f"{load['peak_rss_mb']:.0f} MB of RSS for a {size_mb:.0f} MiB file"
                )
            if load["client_bound"]:
                notes.append(
                    f"run {r['run']}: the {phase} process used {load['cpu_pct']:.0f}% of a "
                    "core: the client's CPU set the pace"
                )
            others = r["machine_others_pct_by_phase"][phase]
            if others > cpu.BUSY_MACHINE_PCT:
                notes.append(
                    f"run {r['run']}: the machine was busy: other processes and the kernel "
                    f"used {others:.0f}% of a core during the {phase} (the kernel's part "
                    "includes this run's own writeback and loopback traffic); its MB/s are not "
                    "comparable with a quiet run (its CPU seconds are)"
                )
    return notes
