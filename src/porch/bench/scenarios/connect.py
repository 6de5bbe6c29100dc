"""connect: new connections per second (connect, auth, ready, close) over K connections.

``--concurrency`` devices each open K / concurrency connections one after the other: a device
holds one connection at a time (a second one would replace the first), so this needs only as
many accounts as connections in flight. Reported: connections per second (K / wall time) and
the connect-to-ready time per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from porch.bench import cpu
from porch.bench.driver import Channel, Workers, source_address, split
from porch.bench.raw import RawConnection, RawDevice
from porch.bench.scenarios.base import Scenario, UsageError, register
from porch.bench.stats import ProcessSampler, latency_summary, time_series
from porch.bench.targets import Target


@dataclass
class Spec:
    # (url, device, connections to open, source address)
    jobs: list[tuple[str, RawDevice, int, str]]
    timeout: float


@dataclass
class Result:
    latencies_us: bytes = b""
    done_ns: bytes = b""
    opened: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    timed_out: bool = False


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result()
    latencies, done_ns = array("q"), array("q")
    total = sum(j[2] for j in spec.jobs)

    async def device_loop(url: str, device: RawDevice, count: int, source: str) -> None:
        for _ in range(count):
            t0 = time.perf_counter_ns()
            try:
                conn = await RawConnection.for_device(
                    url, device, local_addr=(source, 0), ping_interval=None
                )
            except Exception as exc:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            latencies.append((time.perf_counter_ns() - t0) // 1000)
            done_ns.append(time.time_ns())
            result.opened += 1
            channel.progress("connections", result.opened, total)
            await conn.close()

    channel.send("ready")
    await channel.wait("go", 120)
    try:
        async with asyncio.timeout(spec.timeout):
            await asyncio.gather(*(device_loop(*job) for job in spec.jobs))
    except TimeoutError:
        result.timed_out = True
    result.latencies_us = latencies.tobytes()
    result.done_ns = done_ns.tobytes()
    return result


@register
class Connect(Scenario):
    name = "connect"
    help = "connections + auth per second over K new connections"
    headline = ("connections_per_s", "conn/s")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--connections", type=int, default=2000, help="K connections")
        parser.add_argument(
            "--concurrency", type=int, default=32, help="connections in flight (= accounts)"
        )
        parser.add_argument(
            "--source-addrs", type=int, default=4, help="client source addresses 127.0.0.2.."
        )

    def check(self) -> None:
        a = self.args
        if a.connections < 1 or a.concurrency < 1 or a.source_addrs < 1:
            raise UsageError("--connections, --concurrency and --source-addrs must be positive")

    def setup(self, target: Target) -> None:
        self.devices = target.provision(min(self.args.concurrency, self.args.connections))

    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        a = self.args
        urls = target.ws_urls
        n = len(self.devices)
        jobs = [
            (
                urls[i % len(urls)],
                d,
                a.connections // n + (1 if i < a.connections % n else 0),
                source_address(i, a.source_addrs),
            )
            for i, d in enumerate(self.devices)
        ]
        specs = [Spec(mine, a.timeout) for mine in split(jobs, a.procs)]
        with Workers(work, specs) as workers, ProcessSampler(workers.pids) as load:
            workers.expect("ready", 120)
            sampler.mark_start()
            load.mark_start()
            start_ns = time.time_ns()
            workers.broadcast("go")
            results: list[Result] = workers.results(a.timeout + 60)
            wall = (time.time_ns() - start_ns) / 1e9
            server = sampler.mark_end()
            load_fig = load.mark_end()
        latencies, done = array("q"), array("q")
        for r in results:
            latencies.frombytes(r.latencies_us)
            done.frombytes(r.done_ns)
        opened = sum(r.opened for r in results)
        if done:
            wall = max(1e-9, (max(done) - start_ns) / 1e9)
        out: dict[str, Any] = {
            "connections_per_s": round(opened / wall, 1),
            "wall_s": round(wall, 3),
            "expected": a.connections,
            "opened": opened,
            "lost": a.connections - opened,
            "errors": sum(r.errors for r in results),
            "error_samples": [s for r in results for s in r.error_samples][:5],
            "timed_out": any(r.timed_out for r in results),
            "latency_ms": latency_summary(latencies),
            "server": vars(server),
            "load": cpu.load_figures(load_fig.process_cpu_s, load_fig.wall_s, len(target.nodes)),
            "series": time_series(done, latencies, start_ns),
            "behind": [],
        }
        return out

    def columns(self) -> list[tuple[str, str]]:
        return [
            ("conn/s", "connections_per_s"),
            ("p50 ms", "latency_ms.p50"),
            ("p95 ms", "latency_ms.p95"),
            ("p99 ms", "latency_ms.p99"),
            ("max ms", "latency_ms.max"),
            ("cpu %", "server.cpu_pct"),
            ("rss MB", "server.peak_rss_mb"),
            ("failed", "lost"),
        ]
