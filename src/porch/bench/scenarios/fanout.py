"""fanout: one sender, a group of N connected devices, M group messages (spec A's shared send).

Setup (not measured): N receiver accounts and one sender are registered with keys, and the
sender creates a real group with the N receivers as members (POST /v1/groups, a 1 KiB state
blob). Then, receivers still offline, the sender sends K group messages (``--stored``) and the
database growth of the message tables is measured (storage.py), next to the naive figure of N
copies of the body. The receivers connect (``"batch": true``, spread over ``--procs``
processes and, on a cluster, over the nodes; the sender uses node A), drain those K, and the
measured phase sends M group messages, ``--interval`` seconds apart, each only once the
previous one is at every device. Each group message is one ``send`` with N destinations,
device entries without bodies, and one ``shared`` kind-2 body.

Per message: fan-out completion = last device's arrival - send time; per device: one-way
latency; ``sent`` answer latency. Server CPU per group message and per delivered envelope is
the server's CPU time over the measured phase (which includes the intervals) divided by M and
by the envelopes delivered (``server_cpu_us_per_msg``, split by thread as in cpu.py). Each
device must get each message exactly once. Not run against the relays: a group's fan-out is
the server's (its member list), which neither relay has.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import sys
import time
import uuid
from array import array
from typing import Any

from porch.bench import cpu, storage
from porch.bench.driver import Workers, split
from porch.bench.raw import RawDevice
from porch.bench.scenarios.base import Scenario, UsageError, duplicates_note, register
from porch.bench.scenarios.fanout_clients import Result, Spec, work
from porch.bench.stats import ProcessSampler, latency_summary
from porch.bench.targets import Target
from porch.client.api import Credentials, HttpApi
from porch.protocol.fields import MAX_DESTINATIONS

STATE_BYTES = 1024  # a sealed group state of a small group (spec B allows up to 8225)
DEFAULT_MAX_MEMBERS = 1000  # PORCH_MAX_GROUP_MEMBERS' default (server/settings.py)
MSG_WAIT = 30.0  # seconds one group message may take to reach every device


def _devices(text: str) -> list[int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N[,N...], got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("--devices is empty")
    return values


async def _create_group(url: str, owner: RawDevice, members: list[RawDevice]) -> str:
    api = HttpApi(url, Credentials(owner.account_id, owner.device_id, owner.password))
    group_id = str(uuid.uuid4())
    try:
        await api.request(
            "POST",
            "/v1/groups",
            {
                "id": group_id,
                "state": base64.b64encode(os.urandom(STATE_BYTES)).decode(),
                "settings": {"members_can_edit": False, "join_approval": False},
                "members": [m.account_id for m in members],
            },
        )
    finally:
        await api.aclose()
    return group_id


def _summary(values_us: list[int]) -> dict[str, float]:
    s = latency_summary(array("q", values_us))
    return {k: (round(v, 2) if k != "count" else v) for k, v in s.items()}


@register
class Fanout(Scenario):
    name = "fanout"
    help = "one sender to a group of N connected devices: fan-out completion, bytes stored"
    supported = ("sqlite", "sqlite-websockets", "cluster")
    default_targets = ("sqlite",)
    headline = ("completion_ms.p50", "ms")
    option_defaults = {"procs": 2}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--devices",
            type=_devices,
            default=[100, 1000],
            help="receiving devices N, comma list: one run and one row each (100,1000)",
        )
        parser.add_argument("--messages", type=int, default=50, help="group messages M (50)")
        parser.add_argument(
            "--payload-bytes", type=int, default=300, help="shared body before base64 (300)"
        )
        parser.add_argument(
            "--interval", type=float, default=0.2, help="seconds between group messages (0.2)"
        )
        parser.add_argument(
            "--stored",
            type=int,
            default=20,
            help="group messages K sent to the offline receivers to measure bytes stored (20)",
        )

    def check(self) -> None:
        a = self.args
        if a.messages < 1 or a.stored < 0 or a.interval < 0 or a.payload_bytes < 12:
            raise UsageError(
                "--messages must be positive, --stored and --interval >= 0, "
                "--payload-bytes >= 12 (the send-time header)"
            )
        if any(n < 1 or n > MAX_DESTINATIONS for n in a.devices):
            raise UsageError(
                f"--devices must be 1..{MAX_DESTINATIONS}: one send carries at most "
                f"{MAX_DESTINATIONS} destinations (spec A) and this scenario sends one a message"
            )

    def variants(self) -> list[tuple[str, Any]]:
        return [(f"n={n}", n) for n in self.args.devices]

    def env(self) -> dict[str, str]:
        members = max(self.args.devices) + 1
        if members > DEFAULT_MAX_MEMBERS:
            return {"PORCH_MAX_GROUP_MEMBERS": str(members)}
        return {}

    def setup(self, target: Target) -> None:
        n = int(self.variant)
        started = time.monotonic()
        devices = target.provision(n + 1, keys=True, concurrency=64)
        self.sender, self.receivers = devices[0], devices[1:]
        self.group_id = asyncio.run(
            _create_group(target.nodes[0].http_url, self.sender, self.receivers)
        )
        print(
            f"  setup: {n + 1} devices and a group of {n + 1} in "
            f"{time.monotonic() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        a = self.args
        n, k, m = len(self.receivers), a.stored, a.messages
        total = k + m
        urls = target.ws_urls
        wait_s = min(a.timeout, MSG_WAIT)
        # Cluster: the sender on node A, the receivers spread over every node.
        jobs = [(urls[i % len(urls)], d) for i, d in enumerate(self.receivers)]
        common = (total, k, a.payload_bytes, a.timeout + n / 20, wait_s)
        specs = [Spec("sender", [(urls[0], self.sender)], self.receivers, *common)]
        specs += [Spec("receivers", mine, [], *common) for mine in split(jobs, a.procs)]

        with Workers(work, specs) as workers:

            def step(action: str, arg: Any = None, timeout: float = wait_s + 30) -> list[Any]:
                workers.broadcast("step", (action, arg))
                return workers.expect("step", timeout)

            step("connect")
            before = storage.usage(target)
            step("store", timeout=a.timeout + k * wait_s)
            after = storage.usage(target)
            step("online", timeout=a.timeout + n / 20 + k * wait_s)
            sampler.mark_start()
            step("mark")
            for seq in range(k, total):
                step("msg", seq)
                if seq < total - 1 and a.interval:
                    time.sleep(a.interval)
            server = sampler.mark_end()
            workers.broadcast("step", ("close", None))
            results: list[Result] = workers.results(a.timeout + 60)
        return self._figures(target, n, k, m, results, server, before, after)

    def _figures(
        self,
        target: Target,
        n: int,
        k: int,
        m: int,
        results: list[Result],
        server: Any,
        before: dict[str, int],
        after: dict[str, int],
    ) -> dict[str, Any]:
        a = self.args
        sender = results[0]
        receivers = results[1:]
        sent_ns, sent_us = array("q"), array("q")
        sent_ns.frombytes(sender.sent_ns)
        sent_us.frombytes(sender.sent_us)
        lasts: list[array[int]] = []
        latencies = array("q")
        for r in receivers:
            last = array("q")
            last.frombytes(r.last_ns)
            lasts.append(last)
            latencies.frombytes(r.latencies_us)
        completions: list[int] = []
        for seq in range(k, k + m):
            last_ns = max(last[seq] for last in lasts)
            if sent_ns[seq] and last_ns:
                completions.append((last_ns - sent_ns[seq]) // 1000)
        lost = sum(r.missing for r in receivers)
        delivered = n * (k + m) - lost
        delivered_live = len(latencies)
        cpu_s = server.cpu_s
        grown = storage.growth(before, after)
        per_message = grown["total"] / k if k else float("nan")
        naive = n * a.payload_bytes
        # What per-device bodies would take instead: each device's envelope row as measured
        # plus its own copy of the body, which the store keeps as base64 text.
        row = grown["envelopes"] / (k * n) if k else float("nan")
        per_device_bodies = n * (row + 4 * math.ceil(a.payload_bytes / 3))
        load_cpu = [round(r.cpu_s, 3) for r in results]  # the sender first, then receivers
        figures = cpu.figures(server, load_cpu, server.wall_s, delivered_live, target)
        out: dict[str, Any] = {
            "devices": n,
            "messages": m,
            "group_members": n + 1,
            "completion_ms": _summary(completions),
            "latency_ms": _summary(list(latencies)),
            "sent_ms": _summary([sent_us[s] for s in range(k, k + m) if sent_us[s]]),
            "expected": n * (k + m),
            "received": delivered,
            "lost": lost,
            "duplicates": sum(r.duplicates for r in results),
            "errors": sum(r.errors for r in results),
            "error_samples": [s for r in results for s in r.error_samples][:5],
            "timed_out": any(r.waited_out for r in results),
            "server": vars(server),
            "server_cpu_s": round(cpu_s, 3),
            "server_cpu_ms_per_message": round(1000 * cpu_s / m, 2),
            **figures,  # server_cpu_us_per_msg: per delivered envelope
            "stored": {
                "messages": k,
                "bytes_per_message": round(per_message, 0) if k else None,
                "bytes_per_device": round(per_message / n, 1) if k else None,
                "naive_bytes_per_message": naive,
                "saving": round(naive / per_message, 2) if k and per_message > 0 else None,
                "envelope_bytes_per_device": round(row, 1) if k else None,
                "per_device_bodies_estimate": round(per_device_bodies) if k else None,
                "growth": grown,
            },
            "load": figures["load"]
            | {
                "receiver_cpu_ms_per_message": round(1000 * max(load_cpu[1:], default=0.0) / m, 2),
                "connect_s": round(max((r.connect_s for r in receivers), default=0.0), 2),
            },
        }
        out["behind"] = self._behind(out)
        return out

    def _behind(self, out: dict[str, Any]) -> list[str]:
        behind: list[str] = []
        if out["duplicates"]:
            behind.append(duplicates_note(out["duplicates"]))
        if out["lost"]:
            behind.append(f"{out['lost']} (device, message) deliveries never arrived")
        busy = out["load"]["receiver_cpu_ms_per_message"]
        p50 = out["completion_ms"]["p50"]
        if not math.isnan(p50) and busy > 0.5 * p50:
            behind.append(
                f"the busiest receiver process used {busy:.1f} ms of CPU per group message "
                f"against a completion p50 of {p50:.1f} ms: completion is partly the load "
                "generator's time; try more --procs"
            )
        return behind

    def ok(self, result: dict[str, Any]) -> bool:
        # Exactly once: a duplicate fails the run here (each device must get each message once).
        return super().ok(result) and not result.get("duplicates")

    def columns(self) -> list[tuple[str, str]]:
        return [
            ("devices", "devices"),
            ("done p50", "completion_ms.p50"),
            ("done p99", "completion_ms.p99"),
            ("done max", "completion_ms.max"),
            ("dev p50", "latency_ms.p50"),
            ("dev p99", "latency_ms.p99"),
            ("sent p50", "sent_ms.p50"),
            ("cpu ms/msg", "server_cpu_ms_per_message"),
            ("cpu us/env", "server_cpu_us_per_msg"),
            ("sqlite us", "server_threads_us_per_msg.sqlite_writer"),
            ("rss MB", "server.peak_rss_mb"),
            ("B/msg", "stored.bytes_per_message"),
            ("naive B", "stored.naive_bytes_per_message"),
            ("load cpu %", "load.cpu_pct"),
            ("client-bound", "load.client_bound"),
            ("lost", "lost"),
            ("dup", "duplicates"),
        ]
