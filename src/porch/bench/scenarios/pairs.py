"""pairs: N senders each stream messages to their own receiver.

Receivers connect first, then senders (on a cluster: senders on node A, receivers on node B, so
every message crosses nodes). Warm-up (``--warmup`` messages per pair at full speed, not
measured), then the measured phase, which starts at the same instant in every load process and
ends when the last receiver has its last message. Each sender keeps at most ``--window`` sends
unanswered (no ``sent`` yet; against the bare relay: not yet received); with ``--rate R`` the
senders together offer R messages/s on a fixed schedule and the schedule lag shows whether that
rate was really offered. Receivers acknowledge in batches (every 64 envelopes or 2 ms). The
load processes are in pairs_clients.py.

Delivered msgs/s = messages received in the measured phase / its wall time; server CPU per
message = the server's CPU time over the measured phase / messages received (cpu.py).
"""

from __future__ import annotations

import argparse
import time
from array import array
from typing import Any

from porch.bench import cpu
from porch.bench.driver import Workers, split
from porch.bench.scenarios.base import CPU_COLUMNS, Scenario, UsageError, duplicates_note, register
from porch.bench.scenarios.pairs_clients import Result, Spec, work
from porch.bench.stats import ProcessSampler, latency_summary, percentile, time_series
from porch.bench.targets import Target

MAX_MESSAGES = 10_000_000  # per pair, warm-up included
MAX_PAIRS = 1_000
MAX_WINDOW = 65_536


@register
class Pairs(Scenario):
    name = "pairs"
    help = "N sender/receiver pairs: delivered msgs/s and one-way latency"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pairs", type=int, default=4, help="sender/receiver pairs")
        parser.add_argument("--messages", type=int, default=5000, help="measured messages per pair")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--rate", type=float, help="fixed offered load, msgs/s in total")
        mode.add_argument(
            "--max", action="store_true", help="as fast as the window allows (the default)"
        )
        parser.add_argument("--payload-bytes", type=int, default=300, help="body before base64")
        parser.add_argument("--window", type=int, default=64, help="unanswered sends per sender")
        parser.add_argument("--warmup", type=int, default=200, help="unmeasured msgs per pair")

    def check(self) -> None:
        a = self.args
        if a.pairs < 1 or a.messages < 1 or a.window < 1 or a.payload_bytes < 0 or a.warmup < 0:
            raise UsageError("--pairs, --messages and --window must be positive")
        # Each receiver keeps a byte per sequence number, each pair three connections.
        if a.messages + a.warmup > MAX_MESSAGES or a.pairs > MAX_PAIRS or a.window > MAX_WINDOW:
            raise UsageError(
                f"--messages + --warmup can be at most {MAX_MESSAGES:,}, --pairs at most"
                f" {MAX_PAIRS:,} and --window at most {MAX_WINDOW:,}"
            )
        if a.rate is not None and a.rate <= 0:
            raise UsageError("--rate must be positive (or use --max)")

    def setup(self, target: Target) -> None:
        self.devices = target.provision(2 * self.args.pairs, keys=True)

    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        a = self.args
        devices = self.devices
        pairs = [(devices[2 * i], devices[2 * i + 1]) for i in range(a.pairs)]
        urls = target.ws_urls
        sender_url, receiver_url = urls[0], urls[-1]  # cluster: A -> B
        specs = [
            Spec(
                sender_url,
                receiver_url,
                mine,
                a.messages,
                a.warmup,
                a.window,
                a.payload_bytes,
                a.rate / a.pairs if a.rate else None,
                a.timeout,
                target.kind == "bare-relay",
            )
            for mine in split(pairs, a.procs)
        ]
        with Workers(work, specs) as workers:
            workers.expect("connected", 120)
            workers.broadcast("warmup")
            workers.expect("warm", a.timeout + 30)
            start_ns = time.time_ns() + 100_000_000  # every load process starts at this instant
            workers.broadcast("go", start_ns)
            time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9))
            sampler.mark_start()
            results: list[Result] = workers.results(a.timeout + 60)
            server = sampler.mark_end()

        latencies, recv, lags = array("q"), array("q"), array("q")
        for r in results:
            latencies.frombytes(r.latencies_us)
            recv.frombytes(r.recv_ns)
            lags.frombytes(r.lags_us)
        received = sum(r.received for r in results)
        expected = sum(r.expected for r in results)
        end_ns = max(r.end_ns for r in results)
        wall = max(1e-9, (end_ns - start_ns) / 1e9)
        last_sent = max(r.last_sent_ns for r in results)
        sent_acks = sum(r.sent_acks for r in results)
        out: dict[str, Any] = {
            "delivered_per_s": round(received / wall, 1),
            "wall_s": round(wall, 3),
            "received": received,
            "expected": expected,
            "lost": expected - received,
            "duplicates": sum(r.duplicates for r in results),
            "errors": sum(r.errors for r in results),
            "error_samples": [s for r in results for s in r.error_samples][:5],
            "timed_out": any(r.timed_out for r in results),
            "sent_acks": sent_acks,
            # How fast the target answered "sent" (for Porch: stored) in the measured phase;
            # the bare relay answers nothing.
            "answered_per_s": round(sent_acks / max(1e-9, (last_sent - start_ns) / 1e9), 1)
            if sent_acks
            else None,
            "latency_ms": latency_summary(latencies),
            "server": vars(server),
            **cpu.figures(server, [r.cpu_s for r in results], wall, received, target),
            "series": time_series(recv, latencies, start_ns),
        }
        behind: list[str] = []
        if a.rate:
            lags = array("q", sorted(lags))
            out["offered_per_s"] = a.rate
            out["schedule_lag_ms"] = {
                "p99": percentile(lags, 99) / 1000,
                "max": lags[-1] / 1000 if lags else float("nan"),
            }
            if out["schedule_lag_ms"]["p99"] > 5 or out["delivered_per_s"] < 0.95 * a.rate:
                behind.append(
                    f"did not sustain the offered {a.rate:g} msgs/s (delivered "
                    f"{out['delivered_per_s']:.0f}/s, schedule lag p99 "
                    f"{out['schedule_lag_ms']['p99']:.1f} ms): lower --rate"
                )
        elif (out["answered_per_s"] or 0) > 1.15 * out["delivered_per_s"]:
            behind.append(
                f"delivery fell behind storing ({out['answered_per_s']:.0f} stored/s vs "
                f"{out['delivered_per_s']:.0f} delivered/s): a backlog built up, so the max-load "
                "latencies are queueing time"
            )
        if out["duplicates"]:
            behind.append(duplicates_note(out["duplicates"]))
        out["behind"] = behind
        return out

    def columns(self) -> list[tuple[str, str]]:
        cols = [
            ("sent/s", "answered_per_s"),
            ("msgs/s", "delivered_per_s"),
            ("p50 ms", "latency_ms.p50"),
            ("p95 ms", "latency_ms.p95"),
            ("p99 ms", "latency_ms.p99"),
            ("max ms", "latency_ms.max"),
            ("cpu %", "server.cpu_pct"),
            *CPU_COLUMNS,
            ("rss MB", "server.peak_rss_mb"),
            ("lost", "lost"),
            ("dup", "duplicates"),
            ("errors", "errors"),
        ]
        if self.args.rate:
            cols.append(("lag p99", "schedule_lag_ms.p99"))
        return cols
