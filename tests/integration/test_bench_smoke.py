"""bench/pairs.py end to end with tiny numbers: both targets deliver every message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pairs_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "pairs.py"),
            "--pairs",
            "2",
            "--messages",
            "50",
            "--warmup",
            "20",
            "--timeout",
            "30",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"porch", "relay"}
    for name, r in doc["results"].items():
        assert r["expected"] == 100, name
        assert r["received"] == 100, (name, r)
        assert r["lost"] == 0 and r["duplicates"] == 0 and r["errors"] == 0, (name, r)
        assert not r["timed_out"], name
        assert r["delivered_per_s"] > 0
        lat = r["latency_ms"]
        assert 0 <= lat["p50"] <= lat["p99"] <= lat["max"], (name, lat)
    assert doc["results"]["porch"]["left_in_store"] == 0  # every envelope acknowledged
    assert doc["ratio"]["throughput"] > 0
    assert "porch/relay" in proc.stdout
