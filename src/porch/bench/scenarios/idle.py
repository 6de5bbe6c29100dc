"""idle: C authenticated connections held open with heartbeats running; memory per connection.

C accounts are registered first (HTTP API, no keys: enough to connect), because a device holds
one connection at a time. The load processes then open C connections (spread over source
addresses 127.0.0.2.., ``--connect-rate`` at most), hold them ``--hold`` seconds while the
server pings every ``--heartbeat`` seconds (PORCH_HEARTBEAT_SECONDS), then check every
connection still answers an application ``ping``. Per-connection cost = (server RSS after the
hold - RSS before connecting) / C. On a cluster the connections are spread over the nodes and
the RSS figures are the sum over the nodes.

One process can hold at most its open-file limit in sockets; beyond that use more nodes
(``--target cluster --nodes K``); the load side uses as many processes as it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from porch.bench.driver import Channel, Workers, source_address, split
from porch.bench.raw import RawConnection, RawDevice
from porch.bench.relay_server import raise_nofile
from porch.bench.scenarios.base import Scenario, UsageError, register
from porch.bench.stats import ProcessSampler
from porch.bench.targets import Target
from porch.protocol import client_frames as cf

FD_SPARE = 200  # file descriptors a process needs besides its sockets
IN_FLIGHT = 64  # connection attempts in flight per load process


@dataclass
class Spec:
    jobs: list[tuple[str, RawDevice, str]]  # (url, device, source address)
    connect_rate: float  # connections/s for this process
    timeout: float


@dataclass
class Result:
    opened: int = 0
    failed: int = 0
    dropped: int = 0  # closed during the hold
    answered: int = 0  # answered the ping after the hold
    connect_s: float = 0.0
    error_samples: list[str] = field(default_factory=list)


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result()
    conns: list[RawConnection] = []
    gate = asyncio.Semaphore(IN_FLIGHT)
    total = len(spec.jobs)
    interval = 1 / spec.connect_rate if spec.connect_rate > 0 else 0.0

    def failed(exc: BaseException) -> None:
        result.failed += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])

    async def one(i: int, url: str, device: RawDevice, source: str) -> None:
        if interval:
            await asyncio.sleep(i * interval)
        async with gate:
            try:
                conn = await RawConnection.for_device(
                    url, device, local_addr=(source, 0), ping_interval=None
                )
            except Exception as exc:
                failed(exc)
                return
        conns.append(conn)
        result.opened += 1
        channel.progress("connected", result.opened, total)

    started = time.monotonic()
    try:
        async with asyncio.timeout(spec.timeout):
            await asyncio.gather(*(one(i, *job) for i, job in enumerate(spec.jobs)))
    except TimeoutError as exc:
        failed(exc)
    result.connect_s = time.monotonic() - started
    channel.send("connected", (result.opened, result.failed))
    await channel.wait("check", spec.timeout + 3600)

    result.dropped = sum(1 for c in conns if c.closed)

    async def ping(conn: RawConnection) -> None:
        if conn.closed:
            return
        async with gate:
            try:
                async with asyncio.timeout(30):
                    await conn.send_frame(cf.ping(7))
                    while (await conn.recv_frame()).get("type") != "pong":
                        pass
            except Exception as exc:
                failed(exc)
                return
        result.answered += 1
        channel.progress("answered ping", result.answered, len(conns))

    await asyncio.gather(*(ping(c) for c in conns))
    channel.send("checked")
    await channel.wait("close", 600)

    async def close(conn: RawConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await conn.close()

    await asyncio.gather(*(close(c) for c in conns))
    return result


@register
class Idle(Scenario):
    name = "idle"
    help = "C idle authenticated connections with heartbeats: server memory per connection"
    supported = ("sqlite", "sqlite-websockets", "cluster")
    default_targets = ("sqlite",)
    headline = ("per_connection_kb", "KB/conn")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--connections", type=int, default=2000, help="C connections")
        parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold them")
        parser.add_argument(
            "--heartbeat", type=float, default=5.0, help="server ping interval (s) for the run"
        )
        parser.add_argument(
            "--connect-rate",
            type=float,
            default=0.0,
            help="connections/s while opening (0: as fast as the server accepts)",
        )
        parser.add_argument(
            "--source-addrs",
            type=int,
            default=0,
            help="client source addresses 127.0.0.2.. (0: one per 10,000 connections)",
        )

    def check(self) -> None:
        a = self.args
        if a.connections < 1 or a.hold < 0 or a.heartbeat <= 0 or a.connect_rate < 0:
            raise UsageError("--connections and --heartbeat must be positive, --hold >= 0")

    def env(self) -> dict[str, str]:
        return {"PORCH_HEARTBEAT_SECONDS": str(self.args.heartbeat)}

    def setup(self, target: Target) -> None:
        a = self.args
        limit = raise_nofile()
        per_node = math.ceil(a.connections / len(target.nodes))
        if per_node > limit - FD_SPARE:
            nodes = math.ceil(a.connections / (limit - FD_SPARE))
            raise UsageError(
                f"{per_node} connections per server process exceed its open-file limit "
                f"({limit}, the hard limit here; raise it with `ulimit -Hn` as root or in the "
                f"container's settings), or spread them: --target cluster --nodes {nodes}"
            )
        self.devices = target.provision(a.connections, keys=False, concurrency=64)

    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        a = self.args
        limit = raise_nofile()
        urls = target.ws_urls
        addrs = a.source_addrs or max(1, math.ceil(a.connections / 10_000))
        jobs = [
            (urls[i % len(urls)], d, source_address(i, addrs)) for i, d in enumerate(self.devices)
        ]
        procs = max(a.procs, math.ceil(a.connections / (limit - FD_SPARE)))
        chunks = split(jobs, procs)
        specs = [
            Spec(mine, a.connect_rate / len(chunks), a.timeout + a.connections / 200)
            for mine in chunks
        ]
        rss_before = sampler.rss_mb()
        started = time.monotonic()
        with Workers(work, specs) as workers:
            got = workers.expect("connected", a.timeout + a.connections / 100 + 60)
            connect_s = time.monotonic() - started
            opened = sum(g[0] for g in got)
            rss_connected = sampler.rss_mb()
            sampler.mark_start()  # the measured phase is the hold: heartbeats only
            print(
                f"  {opened} connections open in {connect_s:.1f} s "
                f"(server RSS {rss_before:.0f} -> {rss_connected:.0f} MB); holding {a.hold:g} s",
                file=sys.stderr,
                flush=True,
            )
            hold_end = time.monotonic() + a.hold
            while (left := hold_end - time.monotonic()) > 0:
                time.sleep(min(left, 5.0))
                if left > 5:
                    print(
                        f"  holding: {max(0.0, hold_end - time.monotonic()):.0f} s left, "
                        f"server RSS {sampler.rss_mb():.0f} MB",
                        file=sys.stderr,
                        flush=True,
                    )
            rss_after = sampler.rss_mb()
            server_counted = target.connections() if target.porch else None
            server = sampler.mark_end()
            workers.broadcast("check")
            workers.expect("checked", 600)
            workers.broadcast("close")
            results: list[Result] = workers.results(600)
        answered = sum(r.answered for r in results)
        per_conn_kb = (rss_after - rss_before) * 1024 / max(1, opened)
        out: dict[str, Any] = {
            "connections": a.connections,
            "opened": opened,
            "failed": sum(r.failed for r in results),
            "dropped_during_hold": sum(r.dropped for r in results),
            "answered_ping": answered,
            "server_counted": server_counted,
            "lost": a.connections - answered,
            "errors": sum(r.failed for r in results),
            "error_samples": [s for r in results for s in r.error_samples][:5],
            "connect_s": round(connect_s, 2),
            "connects_per_s": round(opened / max(1e-9, connect_s), 1),
            "hold_s": a.hold,
            "heartbeat_s": a.heartbeat,
            "rss_before_mb": round(rss_before, 1),
            "rss_connected_mb": round(rss_connected, 1),
            "rss_after_hold_mb": round(rss_after, 1),
            "per_connection_kb": round(per_conn_kb, 2),
            "projected_50k_mb": round(rss_before + 50_000 * per_conn_kb / 1024, 0),
            "load_processes": len(specs),
            "source_addresses": addrs,
            "server": vars(server),
            "behind": [],
        }
        if out["dropped_during_hold"]:
            out["behind"].append(
                f"{out['dropped_during_hold']} connections closed during the hold (missed "
                "heartbeats?): the load processes may be too slow; add --procs"
            )
        return out

    def columns(self) -> list[tuple[str, str]]:
        return [
            ("conns", "opened"),
            ("alive", "answered_ping"),
            ("conn/s", "connects_per_s"),
            ("rss0 MB", "rss_before_mb"),
            ("rss MB", "rss_after_hold_mb"),
            ("KB/conn", "per_connection_kb"),
            ("50k MB", "projected_50k_mb"),
            ("cpu %", "server.cpu_pct"),
            ("failed", "failed"),
        ]
