"""pairs: N senders each stream messages to their own receiver.

Receivers connect first, then senders (on a cluster: senders on node A, receivers on node B, so
every message crosses nodes). Warm-up (``--warmup`` messages per pair at full speed, not
measured), then the measured phase, which starts at the same instant in every load process and
ends when the last receiver has its last message. Each sender keeps at most ``--window`` sends
unanswered (no ``sent`` yet); with ``--rate R`` the senders together offer R messages/s on a
fixed schedule and the schedule lag shows whether that rate was really offered. Receivers
acknowledge in batches (every 64 envelopes or 2 ms).

Delivered msgs/s = messages received in the measured phase / its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from porch.bench.driver import Channel, Workers, split
from porch.bench.payload import ACK_BATCH, ACK_EVERY, MAX_ACK_IDS, Bodies, read_header, send_frame
from porch.bench.raw import RawConnection, RawDevice
from porch.bench.scenarios.base import Scenario, UsageError, duplicates_note, register
from porch.bench.stats import ProcessSampler, latency_summary, percentile, time_series
from porch.bench.targets import Target
from porch.protocol import client_frames as cf

# Load process ------------------------------------------------------------------------------


@dataclass
class Spec:
    sender_url: str
    receiver_url: str
    pairs: list[tuple[RawDevice, RawDevice]]  # (sender, receiver)
    messages: int
    warmup: int
    window: int
    payload_bytes: int
    rate_per_sender: float | None
    timeout: float


@dataclass
class Result:
    latencies_us: bytes = b""  # array("q") of the measured phase
    recv_ns: bytes = b""  # array("q"): when each of those arrived
    lags_us: bytes = b""  # array("q"): how late each scheduled send went out (--rate only)
    received: int = 0
    expected: int = 0
    sent_acks: int = 0
    duplicates: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    end_ns: int = 0
    last_sent_ns: int = 0  # when the last measured "sent" arrived
    timed_out: bool = False


class Pair:
    def __init__(
        self,
        spec: Spec,
        sender: RawConnection,
        receiver: RawConnection,
        to: RawDevice,
        result: Result,
    ) -> None:
        self.spec = spec
        self.sender = sender
        self.receiver = receiver
        self.to = to
        self.result = result
        self.window = asyncio.Semaphore(spec.window)
        self.seen = bytearray(spec.warmup + spec.messages)
        self.latencies = array("q")
        self.recv_ns = array("q")
        self.lags = array("q")
        self.phase_lo = 0
        self.phase_target = 0
        self.phase_count = 0
        self.phase_done = asyncio.Event()
        self.last_ns = 0
        self.measuring = False
        self.pending_acks: list[int] = []
        self.bodies = Bodies(spec.payload_bytes)

    def error(self, text: str) -> None:
        self.result.errors += 1
        if len(self.result.error_samples) < 5:
            self.result.error_samples.append(text[:300])

    async def read_sender(self) -> None:
        while True:
            frame = await self.sender.recv_frame()
            kind = frame.get("type")
            if kind == "sent":
                if self.measuring:
                    self.result.sent_acks += 1
                    self.result.last_sent_ns = time.time_ns()
                self.window.release()
            elif kind == "error":
                self.error(json.dumps(frame))
                if frame.get("ref") is not None:
                    self.window.release()

    async def read_receiver(self) -> None:
        while True:
            frame = await self.receiver.recv_frame()
            kind = frame.get("type")
            if kind == "envelope":
                now = time.time_ns()
                sent_ns, seq = read_header(frame["body"])
                self.pending_acks.append(frame["id"])
                if len(self.pending_acks) >= ACK_BATCH:
                    await self.flush_acks()
                if seq >= len(self.seen):
                    self.error(f"unexpected sequence number {seq}")
                    continue
                if self.seen[seq]:
                    self.result.duplicates += 1
                    continue
                self.seen[seq] = 1
                if self.phase_lo <= seq < self.phase_lo + self.phase_target:
                    if self.measuring:
                        self.latencies.append((now - sent_ns) // 1000)
                        self.recv_ns.append(now)
                    self.last_ns = now
                    self.phase_count += 1
                    if self.phase_count == self.phase_target:
                        self.phase_done.set()
            elif kind == "error":
                self.error(json.dumps(frame))

    async def flush_acks(self) -> None:
        while self.pending_acks:
            ids = self.pending_acks[:MAX_ACK_IDS]
            self.pending_acks = self.pending_acks[MAX_ACK_IDS:]
            await self.receiver.send_frame(cf.ack(ids))

    async def ack_timer(self) -> None:
        while True:
            await asyncio.sleep(ACK_EVERY)
            await self.flush_acks()

    def start_phase(self, lo: int, count: int, measuring: bool) -> None:
        self.phase_lo, self.phase_target = lo, count
        self.measuring = measuring
        self.phase_done.clear()
        # Messages of this phase that arrived early (none, in practice) still count.
        self.phase_count = sum(self.seen[lo : lo + count])
        if self.phase_count >= count:
            self.phase_done.set()

    async def send(self, lo: int, count: int, start_ns: int, rate: float | None) -> None:
        interval_ns = int(1e9 / rate) if rate else 0
        for i in range(count):
            seq = lo + i
            if rate:
                due = start_ns + i * interval_ns
                now = time.time_ns()
                if due > now:
                    await asyncio.sleep((due - now) / 1e9)
            await self.window.acquire()
            now = time.time_ns()
            if rate:
                self.lags.append(max(0, now - (start_ns + i * interval_ns)) // 1000)
            body = self.bodies.body(now, seq)
            await self.sender.send_frame(send_frame(f"m{seq}", self.to, body))


async def _phase(
    pairs: list[Pair],
    lo: int,
    count: int,
    start_ns: int,
    rate: float | None,
    measuring: bool,
    limit_s: float,
) -> bool:
    """Run one phase on every pair; False if it did not finish in time."""
    for p in pairs:
        p.start_phase(lo, count, measuring)
    delay = (start_ns - time.time_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
    senders = [asyncio.create_task(p.send(lo, count, start_ns, rate)) for p in pairs]
    try:
        async with asyncio.timeout(limit_s):
            await asyncio.gather(*(p.phase_done.wait() for p in pairs), *senders)
    except TimeoutError:
        return False
    finally:
        for t in senders:
            t.cancel()
    return True


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result(expected=spec.messages * len(spec.pairs))
    # Receivers first, so that the relay (which keeps nothing) has somewhere to deliver.
    receivers = await asyncio.gather(
        *(RawConnection.for_device(spec.receiver_url, r) for _, r in spec.pairs)
    )
    senders = await asyncio.gather(
        *(RawConnection.for_device(spec.sender_url, s) for s, _ in spec.pairs)
    )
    pairs = [
        Pair(spec, s, r, dev, result)
        for s, r, (_, dev) in zip(senders, receivers, spec.pairs, strict=True)
    ]
    tasks = [
        asyncio.create_task(c)
        for p in pairs
        for c in (p.read_sender(), p.read_receiver(), p.ack_timer())
    ]
    try:
        channel.send("connected")
        await channel.wait("warmup", 300)
        if spec.warmup:
            ok = await _phase(pairs, 0, spec.warmup, time.time_ns(), None, False, spec.timeout)
            if not ok:
                raise TimeoutError(
                    f"warm-up did not finish in {spec.timeout} s; is the target overloaded?"
                )
        channel.send("warm")
        start_ns = await channel.wait("go", 300)
        finished = await _phase(
            pairs, spec.warmup, spec.messages, start_ns, spec.rate_per_sender, True, spec.timeout
        )
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                result.errors += 1
                result.error_samples.append(f"connection task failed: {t.exception()!r}")
        result.timed_out = not finished
        # Acknowledge the tail, so that a correct server ends with an empty queue.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await asyncio.gather(*(p.flush_acks() for p in pairs))
        result.received = sum(p.phase_count for p in pairs)
        result.end_ns = max(p.last_ns for p in pairs)
        result.latencies_us = b"".join(p.latencies.tobytes() for p in pairs)
        result.recv_ns = b"".join(p.recv_ns.tobytes() for p in pairs)
        result.lags_us = b"".join(p.lags.tobytes() for p in pairs)
        return result
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await asyncio.gather(
                    *(c.close() for c in [*senders, *receivers]), return_exceptions=True
                )


# Scenario ----------------------------------------------------------------------------------


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
            )
            for mine in split(pairs, a.procs)
        ]
        with Workers(work, specs) as workers, ProcessSampler(workers.pids) as load:
            workers.expect("connected", 120)
            workers.broadcast("warmup")
            workers.expect("warm", a.timeout + 30)
            start_ns = time.time_ns() + 100_000_000  # every load process starts at this instant
            sampler.mark_start()
            load.mark_start()
            workers.broadcast("go", start_ns)
            results: list[Result] = workers.results(a.timeout + 60)
            server = sampler.mark_end()
            load_fig = load.mark_end()

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
            # How fast the target answered "sent" (for Porch: stored) in the measured phase.
            "answered_per_s": round(sent_acks / max(1e-9, (last_sent - start_ns) / 1e9), 1),
            "latency_ms": latency_summary(latencies),
            "server": vars(server),
            "load": {"processes": len(specs), "cpu_pct": load_fig.cpu_pct},
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
        elif out["answered_per_s"] > 1.15 * out["delivered_per_s"]:
            behind.append(
                f"delivery fell behind storing ({out['answered_per_s']:.0f} stored/s vs "
                f"{out['delivered_per_s']:.0f} delivered/s): a backlog built up, so the max-load "
                "latencies are queueing time"
            )
        if out["duplicates"]:
            behind.append(duplicates_note(out["duplicates"]))
        if load_fig.cpu_pct > 90 * len(specs) and load_fig.wall_s >= 1:
            behind.append(
                f"the load processes were CPU-bound ({load_fig.cpu_pct:.0f}% over {len(specs)} "
                "process(es)): figures are a lower bound; try --procs 2"
            )
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
            ("rss MB", "server.peak_rss_mb"),
            ("lost", "lost"),
            ("dup", "duplicates"),
            ("errors", "errors"),
        ]
        if self.args.rate:
            cols.append(("lag p99", "schedule_lag_ms.p99"))
        return cols
