"""`porch bench` end to end with tiny numbers: every scenario runs and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from porch.bench.cli import main as bench
from tests.integration.backends import require_services

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *argv: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    code = bench([*argv, "--out", str(tmp_path / "results"), "--json", str(out), "--no-plot"])
    doc: dict[str, Any] = json.loads(out.read_text())
    assert code == 0, json.dumps(doc["results"], indent=1)[:3000]
    return doc


def _common(r: dict[str, Any]) -> None:
    assert r["ok"] and r["lost"] == 0 and r["errors"] == 0 and not r["server_log_errors"], r
    assert r["server"]["cpu_pct"] >= 0 and r["server"]["peak_rss_mb"] > 10


def test_pairs_old_command_line(tmp_path: Path) -> None:
    """bench/pairs.py still works, runs Porch (SQLite) and both relays, and reports the ratios."""
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
            "--out",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["scenario"] == "pairs"
    assert set(doc["results"]) == {"sqlite", "protocol-relay", "bare-relay"}
    for name, r in doc["results"].items():
        _common(r)
        assert r["expected"] == 100 and r["received"] == 100, (name, r)
        assert r["duplicates"] == 0 and not r["timed_out"], (name, r)
        assert r["delivered_per_s"] > 0
        lat = r["latency_ms"]
        assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], (name, lat)
        assert r["series"]["t_s"], name
    assert doc["results"]["sqlite"]["left_in_store"] == 0  # every envelope acknowledged
    assert doc["ratios"]["sqlite"]["protocol-relay"]["throughput"] > 0
    assert doc["ratios"]["sqlite"]["bare-relay"]["throughput"] > 0
    assert "sqlite / bare-relay: msgs/s x" in proc.stdout
    assert "sqlite / protocol-relay: msgs/s x" in proc.stdout
    assert list((tmp_path / "results").glob("pairs-*.png"))


def _cpu(r: dict[str, Any], threads: set[str]) -> None:
    """Server µs per message and the load generator's CPU, both measured (> 0: enough messages
    that CPU time, read in 10 ms clock ticks, cannot round to zero)."""
    assert r["server_cpu_us_per_msg"] > 0, r
    split = r["server_threads_us_per_msg"]
    assert set(split) == threads and split["event_loop"] > 0, split
    # Threads and the process are read apart, each in 10 ms ticks: they agree within a few ticks.
    ticks_us = 3 * 10_000 / r["received"]
    assert abs(sum(split.values()) - r["server_cpu_us_per_msg"]) <= ticks_us + 1, (split, r)
    load = r["load"]
    assert load["processes"] == len(load["per_process_cpu_s"]) >= 1
    assert load["cpu_s"] > 0 and load["cpu_pct"] > 0 and load["share_pct"] > 0, load
    assert isinstance(load["client_bound"], bool)
    assert r["machine_others_pct"] >= 0 and r["server"]["machine_busy_pct"] > 0


def test_pairs_measures_cpu_per_message_on_every_target(tmp_path: Path) -> None:
    """The three targets in one run, with enough messages for the CPU figures to be positive;
    the bare relay answers nothing, yet the load generator delivers everything through it."""
    doc = _run(tmp_path, "pairs", "--pairs", "2", "--messages", "2000", "--warmup", "50")
    results = doc["results"]
    assert list(results) == ["sqlite", "protocol-relay", "bare-relay"]
    for name, r in results.items():
        _common(r)
        assert r["received"] == r["expected"] == 4000 and r["duplicates"] == 0, name
    _cpu(results["sqlite"], {"event_loop", "sqlite_writer", "other"})
    assert results["sqlite"]["server_threads_us_per_msg"]["sqlite_writer"] > 0
    _cpu(results["protocol-relay"], {"event_loop", "other"})
    _cpu(results["bare-relay"], {"event_loop", "other"})
    assert results["bare-relay"]["answered_per_s"] is None  # no "sent" from a bare relay
    assert results["sqlite"]["answered_per_s"] > 0
    # Durability and the protocol cost something: Porch spends more per message than either.
    ratios = doc["ratios"]["sqlite"]
    assert ratios["bare-relay"]["cpu_per_msg"] > 1 and ratios["protocol-relay"]["cpu_per_msg"] > 1


def test_pairs_on_both_websocket_stacks(tmp_path: Path) -> None:
    """`sqlite` (picows) and `sqlite-websockets` in one run: the same messages delivered once
    each, with the same split of the server's CPU (docs/performance.md, "WebSocket stack")."""
    doc = _run(
        tmp_path, "pairs", "--target", "sqlite,sqlite-websockets", "--pairs", "1",
        "--messages", "1000", "--warmup", "50",
    )  # fmt: skip
    results = doc["results"]
    assert list(results) == ["sqlite", "sqlite-websockets"]
    for name, r in results.items():
        _common(r)
        assert r["received"] == r["expected"] == 1000 and r["duplicates"] == 0, name
        _cpu(r, {"event_loop", "sqlite_writer", "other"})
        assert r["target"]["ws_stack"] == {"sqlite": "picows"}.get(name, "websockets")


def test_relay_is_an_alias_of_the_protocol_relay(tmp_path: Path) -> None:
    doc = _run(
        tmp_path, "pairs", "--target", "relay,sqlite", "--pairs", "1", "--messages", "50",
        "--warmup", "10",
    )  # fmt: skip
    assert list(doc["results"]) == ["protocol-relay", "sqlite"]
    assert doc["results"]["protocol-relay"]["target"]["kind"] == "protocol-relay"
    assert doc["results"]["protocol-relay"]["sent_acks"] == 50  # it answers every send
    assert set(doc["ratios"]["sqlite"]) == {"protocol-relay"}


def test_drain(tmp_path: Path) -> None:
    # 6000: the event loop spends ~3-4 µs a message in a drain, and CPU is read in 10 ms
    # ticks, so 2000 messages could read as 0 for it.
    doc = _run(tmp_path, "drain", "--messages", "6000", "--timeout", "60")
    r = doc["results"]["sqlite"]
    _common(r)
    assert r["stored"] == r["received"] == 6000 and r["duplicates"] == 0
    assert r["drain_per_s"] > 0 and r["drain_s"] > 0
    assert r["left_in_store"] == 0
    _cpu(r, {"event_loop", "sqlite_writer", "other"})


def test_connect(tmp_path: Path) -> None:
    doc = _run(tmp_path, "connect", "--connections", "50", "--concurrency", "8")
    assert set(doc["results"]) == {"sqlite", "protocol-relay", "bare-relay"}
    for r in doc["results"].values():
        _common(r)
        assert r["opened"] == 50 and r["connections_per_s"] > 0
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
        assert isinstance(r["load"]["client_bound"], bool)
    assert doc["ratios"]["sqlite"]["protocol-relay"]["throughput"] > 0
    assert doc["ratios"]["sqlite"]["bare-relay"]["throughput"] > 0


def test_idle(tmp_path: Path) -> None:
    doc = _run(tmp_path, "idle", "--connections", "50", "--hold", "2", "--heartbeat", "1")
    r = doc["results"]["sqlite"]
    _common(r)
    assert r["opened"] == r["answered_ping"] == r["server_counted"] == 50
    assert r["dropped_during_hold"] == 0
    assert r["rss_after_hold_mb"] > 0 and "per_connection_kb" in r


def test_pairs_cluster(tmp_path: Path) -> None:
    """Two nodes on PostgreSQL + Redis: senders on node A, receivers on node B."""
    require_services()
    doc = _run(
        tmp_path, "pairs", "--target", "cluster", "--pairs", "2", "--messages", "500",
        "--warmup", "10", "--timeout", "60",
    )  # fmt: skip
    r = doc["results"]["cluster"]
    _common(r)
    assert r["target"]["nodes"] == 2 and r["received"] == 1000 and r["left_in_store"] == 0
    _cpu(r, {"event_loop", "other"})
    # PostgreSQL runs here (require_services): its backends for this database did the storing.
    services = r["services_us_per_msg"]
    assert set(services) == {"postgresql", "postgresql_background", "redis"}
    assert services["postgresql"] > 0 and services["redis"] >= 0, services


def test_fanout(tmp_path: Path) -> None:
    """One sender, a group of 5 devices, 3 shared group messages (and 20 to them offline)."""
    doc = _run(tmp_path, "fanout", "--devices", "5", "--messages", "3", "--interval", "0.05")
    assert set(doc["results"]) == {"sqlite n=5"}
    r = doc["results"]["sqlite n=5"]
    _common(r)
    assert r["devices"] == 5 and r["group_members"] == 6
    assert r["expected"] == r["received"] == 5 * (20 + 3) and r["duplicates"] == 0
    assert r["left_in_store"] == 0  # every envelope, stored or live, acknowledged
    done, dev = r["completion_ms"], r["latency_ms"]
    assert done["count"] == 3 and dev["count"] == 15
    assert 0 < dev["p50"] <= done["p50"] <= done["max"], (dev, done)
    assert r["sent_ms"]["count"] == 3
    stored = r["stored"]
    assert stored["messages"] == 20 and stored["bytes_per_message"] > 0
    assert stored["naive_bytes_per_message"] == 5 * 300
    assert stored["growth"]["envelopes"] > 0 and stored["growth"]["payloads"] > 0
    load = r["load"]
    assert load["processes"] == 3 and len(load["per_process_cpu_s"]) == 3  # sender + --procs 2
    assert isinstance(load["client_bound"], bool)
    # Three 2 ms messages can fall inside one CPU clock tick (10 ms): zero is a fair reading.
    assert r["server_cpu_ms_per_message"] >= 0 and r["server_cpu_us_per_msg"] >= 0


def test_fanout_refuses_more_destinations_than_a_send_carries(tmp_path: Path) -> None:
    code = bench(["fanout", "--devices", "1001", "--out", str(tmp_path), "--no-plot"])
    assert code == 2


def test_fanout_cluster(tmp_path: Path) -> None:
    """Two nodes: receivers on both, stored bytes from PostgreSQL's relation sizes."""
    require_services()
    doc = _run(
        tmp_path, "fanout", "--target", "cluster", "--devices", "4", "--messages", "2",
        "--interval", "0.05", "--stored", "5",
    )  # fmt: skip
    r = doc["results"]["cluster n=4"]
    _common(r)
    assert r["target"]["nodes"] == 2 and r["received"] == 4 * 7 and r["left_in_store"] == 0
    assert r["stored"]["growth"]["envelopes"] > 0 and r["stored"]["growth"]["database"] > 0


def test_media(tmp_path: Path) -> None:
    """An 8 MiB file through send_file and download: every figure there, the digest checked."""
    doc = _run(tmp_path, "media", "--size-mb", "8", "--runs", "1", "--timeout", "120")
    assert set(doc["results"]) == {"sqlite fs"}
    r = doc["results"]["sqlite fs"]
    assert r["ok"] and r["errors"] == 0 and not r["server_log_errors"], r
    assert r["digest_ok"] and r["left_in_store"] == 0  # the delivery receipt was fetched too
    assert r["size_bytes"] == 8 * 1024 * 1024 and r["runs"] == 1
    (run,) = r["per_run"]
    assert run["digest_ok"] and run["receipt"] and not run["errors"]
    for phase in ("copy", "upload", "download"):
        assert run[f"{phase}_s"] > 0 and run[f"{phase}_mb_s"] > 0, phase
        assert r[f"{phase}_mb_s"] == run[f"{phase}_mb_s"]  # the median of one run
    assert run["upload_vs_copy"] > 0 and run["download_vs_copy"] > 0
    for phase in ("upload", "download"):  # the transfer is one part of each phase
        assert 0 < run[f"{phase}_transfer_s"] <= run[f"{phase}_s"], phase
    for phase in ("upload", "download"):
        server, load = run["server"][phase], run["load"][phase]
        assert server["peak_rss_mb"] > 10 and server["cpu_s"] >= 0 and server["wall_s"] > 0
        assert load["peak_rss_mb"] > 10 and load["cpu_s"] > 0, (phase, load)
        assert r["server"][phase]["peak_rss_mb"] == server["peak_rss_mb"]


def test_media_refuses_s3_without_an_endpoint(tmp_path: Path) -> None:
    code = bench(["media", "--backend", "s3", "--out", str(tmp_path), "--no-plot"])
    assert code == 2
