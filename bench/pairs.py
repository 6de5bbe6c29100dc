"""Pairs benchmark: N senders each stream messages to their own receiver, through Porch and
through a bare relay (bench/relay.py), and report delivered messages/s and one-way latency.

    python bench/pairs.py --pairs 4 --messages 5000 --max --json out.json
    python bench/pairs.py --pairs 4 --messages 5000 --rate 1500 --porch-only

For each target it starts the server as a subprocess (Porch: `porch serve` on a fresh temporary
data dir and a free port, rate limits raised; the relay: bench/relay.py), registers 2N devices
(Porch: through the HTTP API, with identity keys), then runs the pairs in separate load
processes (--procs). Payloads are pre-generated random base64, standing in for ciphertext: this
measures the server, not the crypto. Each body starts with 12 bytes (send time in ns from
time.time_ns(), sequence number) so the receiver computes one-way latency = receive time - send
time, and detects losses and duplicates. Each sender keeps at most --window sends unanswered
(no "sent" yet). Receivers acknowledge envelopes in batches.

Phases: connect all devices; warm up (--warmup messages per pair, at full speed, not measured);
then the measured phase, which starts at the same instant in every load process and ends when
the last receiver has its last message. Delivered messages/s = messages received in the measured
phase / its wall time. With --rate R the senders together offer R messages/s on a fixed schedule
(evenly spread over the senders); the report then also shows how far senders fell behind their
schedule, which says whether the offered rate was actually sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import uvloop

from porch.bench.raw import RawConnection, RawDevice, provision

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
HEADER = struct.Struct(">QI")  # send time (ns since the epoch), sequence number
HEADER_B64 = 16  # 12 bytes -> 16 base64 characters, no padding, so bodies can be concatenated
PAYLOAD_POOL = 32
ACK_BATCH = 64
ACK_EVERY = 0.002
RAISED_LIMITS = {
    f"PORCH_LIMIT_{name}": "1000000/1"
    for name in (
        "CODE_PER_PHONE",
        "CODE_PER_ADDRESS",
        "VERIFY_PER_PHONE",
        "REGISTER_PER_ADDRESS",
        "DIRECTORY_PER_ACCOUNT",
    )
}


# Load process ------------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    ws_url: str
    pairs: list[tuple[RawDevice, RawDevice]]  # (sender, receiver)
    messages: int
    warmup: int
    window: int
    payload_bytes: int
    rate_per_sender: float | None
    timeout: float


@dataclass
class WorkerResult:
    latencies_us: bytes = b""  # array("q") of the measured phase
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
        spec: WorkerSpec,
        sender: RawConnection,
        receiver: RawConnection,
        to: RawDevice,
        result: WorkerResult,
    ) -> None:
        self.spec = spec
        self.sender = sender
        self.receiver = receiver
        self.to = to
        self.result = result
        self.window = asyncio.Semaphore(spec.window)
        self.seen = bytearray(spec.warmup + spec.messages)
        self.latencies = array("q")
        self.lags = array("q")
        self.phase_lo = 0
        self.phase_target = 0
        self.phase_count = 0
        self.phase_done = asyncio.Event()
        self.last_ns = 0
        self.measuring = False
        self.pending_acks: list[int] = []
        pool_bytes = max(0, spec.payload_bytes - HEADER.size)
        self.pool = [base64.b64encode(os.urandom(pool_bytes)).decode() for _ in range(PAYLOAD_POOL)]

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
                sent_ns, seq = HEADER.unpack(base64.b64decode(frame["body"][:HEADER_B64]))
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
                    self.last_ns = now
                    self.phase_count += 1
                    if self.phase_count == self.phase_target:
                        self.phase_done.set()
            elif kind == "error":
                self.error(json.dumps(frame))

    async def flush_acks(self) -> None:
        while self.pending_acks:
            ids, self.pending_acks = self.pending_acks[:1000], self.pending_acks[1000:]
            await self.receiver.send_frame({"type": "ack", "ids": ids})

    async def ack_timer(self) -> None:
        while True:
            await asyncio.sleep(ACK_EVERY)
            await self.flush_acks()

    def start_phase(self, lo: int, count: int, measuring: bool) -> None:
        self.phase_lo, self.phase_target, self.phase_count = lo, count, 0
        self.measuring = measuring
        self.phase_done.clear()
        # Messages of this phase that arrived early (none, in practice) still count.
        self.phase_count = sum(self.seen[lo : lo + count])
        if self.phase_count >= count:
            self.phase_done.set()

    async def send(self, lo: int, count: int, start_ns: int, rate: float | None) -> None:
        to = self.to
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
            body = base64.b64encode(HEADER.pack(now, seq)).decode() + self.pool[seq % PAYLOAD_POOL]
            await self.sender.send_frame(
                {
                    "type": "send",
                    "id": f"m{seq}",
                    "to": to.account_id,
                    "messages": [
                        {
                            "device": to.device_id,
                            "registration": to.registration_id,
                            "kind": 1,
                            "body": body,
                        }
                    ],
                }
            )


async def _wait_pipe(pipe: Connection, limit_s: float) -> Any:
    def get() -> Any:
        if not pipe.poll(limit_s):
            raise TimeoutError("no word from the benchmark driver")
        return pipe.recv()

    return await asyncio.to_thread(get)


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


async def _worker(spec: WorkerSpec, pipe: Connection) -> WorkerResult:
    result = WorkerResult(expected=spec.messages * len(spec.pairs))
    # Receivers first, so that the relay (which keeps nothing) has somewhere to deliver.
    receivers = await asyncio.gather(
        *(RawConnection.for_device(spec.ws_url, r) for _, r in spec.pairs)
    )
    senders = await asyncio.gather(
        *(RawConnection.for_device(spec.ws_url, s) for s, _ in spec.pairs)
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
        pipe.send(("connected", None))
        await _wait_pipe(pipe, 120)
        if spec.warmup:
            ok = await _phase(pairs, 0, spec.warmup, time.time_ns(), None, False, spec.timeout)
            if not ok:
                raise TimeoutError(f"warm-up did not finish in {spec.timeout} s")
        pipe.send(("warm", None))
        _, start_ns = await _wait_pipe(pipe, 120)
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


def worker_main(spec: WorkerSpec, pipe: Connection) -> None:
    try:
        result = uvloop.run(_worker(spec, pipe))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        pipe.send(("done", result))


# Servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_porch(tmp: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    data = tmp / "data"
    log = tmp / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    env |= RAISED_LIMITS | {"PORCH_SMS_PROVIDER": "console"}
    cmd = [
        sys.executable,
        "-m",
        "porch.cli.main",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_listening(proc, port, log, "porch serve")
        deadline = time.monotonic() + 15
        while httpx.get(f"http://{HOST}:{port}/readyz", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"porch serve never became ready:\n{tail(log)}")
            time.sleep(0.1)
    except BaseException:
        stop(proc)
        raise
    return proc, port, data


def start_relay(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = tmp / "relay.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "relay.py"), "--host", HOST, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(proc, port, log, "relay")
    except BaseException:
        stop(proc)
        raise
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# Driver ------------------------------------------------------------------------------------


def percentile(sorted_values: array[int], q: float) -> float:
    """Nearest-rank percentile in ms of sorted microsecond values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1] / 1000


def expect(pipe: Connection, kind: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"a load process sent no {kind!r} within {timeout:.0f} s")
    got, payload = pipe.recv()
    if got == "error":
        raise RuntimeError(f"load process failed: {payload}")
    if got != kind:
        raise RuntimeError(f"load process sent {got!r}, expected {kind!r}")
    return payload


def drive(ws_url: str, devices: list[RawDevice], args: argparse.Namespace) -> dict[str, Any]:
    n = args.pairs
    pairs = [(devices[2 * i], devices[2 * i + 1]) for i in range(n)]
    procs = max(1, min(args.procs, n))
    rate_per_sender = args.rate / n if args.rate else None
    ctx = mp.get_context("spawn")
    workers: list[tuple[Any, Connection]] = []
    try:
        for w in range(procs):
            mine = pairs[w::procs]
            spec = WorkerSpec(
                ws_url,
                mine,
                args.messages,
                args.warmup,
                args.window,
                args.payload_bytes,
                rate_per_sender,
                args.timeout,
            )
            here, there = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(spec, there), daemon=True)
            proc.start()
            workers.append((proc, here))
        for _, pipe in workers:
            expect(pipe, "connected", 60)
        for _, pipe in workers:
            pipe.send(("warmup", None))
        for _, pipe in workers:
            expect(pipe, "warm", args.timeout + 30)
        start_ns = time.time_ns() + 100_000_000  # every load process starts at this instant
        for _, pipe in workers:
            pipe.send(("go", start_ns))
        results: list[WorkerResult] = [expect(p, "done", args.timeout + 60) for _, p in workers]
    finally:
        for proc, pipe in workers:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            pipe.close()

    latencies = array("q")
    lags = array("q")
    for r in results:
        latencies.frombytes(r.latencies_us)
        lags.frombytes(r.lags_us)
    latencies = array("q", sorted(latencies))
    lags = array("q", sorted(lags))
    received = sum(r.received for r in results)
    expected = sum(r.expected for r in results)
    end_ns = max(r.end_ns for r in results)
    wall = max(1e-9, (end_ns - start_ns) / 1e9)
    out: dict[str, Any] = {
        "delivered_per_s": received / wall,
        "wall_s": wall,
        "received": received,
        "expected": expected,
        "lost": expected - received,
        "duplicates": sum(r.duplicates for r in results),
        "errors": sum(r.errors for r in results),
        "error_samples": [s for r in results for s in r.error_samples][:5],
        "timed_out": any(r.timed_out for r in results),
        "sent_acks": sum(r.sent_acks for r in results),
        # How fast the target answered "sent" (for Porch: stored) during the measured phase.
        "answered_per_s": sum(r.sent_acks for r in results)
        / max(1e-9, (max(r.last_sent_ns for r in results) - start_ns) / 1e9),
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "max": latencies[-1] / 1000 if latencies else float("nan"),
        },
        "load_processes": procs,
    }
    if args.rate:
        out["offered_per_s"] = args.rate
        out["schedule_lag_ms"] = {
            "p99": percentile(lags, 99),
            "max": lags[-1] / 1000 if lags else float("nan"),
        }
    return out


def porch_leftovers(port: int) -> dict[str, Any]:
    """After the run: envelopes still queued (0 once every ack is processed), error counts."""
    depth = -1.0
    errors: dict[str, float] = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=5).text
        errors = {}
        for line in text.splitlines():
            if line.startswith("porch_queue_depth "):
                depth = float(line.split()[1])
            elif line.startswith("porch_errors_total{"):
                code = line.split('code="', 1)[1].split('"', 1)[0]
                errors[code] = float(line.split()[-1])
        if depth == 0:
            break
        time.sleep(0.2)
    return {"left_in_store": int(depth), "server_error_counts": errors}


def run_target(target: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{target}-") as tmpdir:
        tmp = Path(tmpdir)
        proc: subprocess.Popen[bytes]
        if target == "porch":
            proc, port, data = start_porch(tmp)
            log = tmp / "server.log"
        else:
            proc, port = start_relay(tmp)
            log = tmp / "relay.log"
        try:
            if target == "porch":
                t = time.monotonic()
                devices = asyncio.run(
                    provision(f"http://{HOST}:{port}", data, 2 * args.pairs, "+1415555")
                )
                print(
                    f"  provisioned {len(devices)} devices in {time.monotonic() - t:.1f} s",
                    file=sys.stderr,
                )
            else:
                devices = [RawDevice(str(uuid.uuid4()), 1, 1, "x") for _ in range(2 * args.pairs)]
            result = drive(f"ws://{HOST}:{port}/v1/ws", devices, args)
            if target == "porch":
                result |= porch_leftovers(port)
        except BaseException:
            print(f"--- {target} log (tail) ---\n{tail(log)}", file=sys.stderr)
            raise
        finally:
            stop(proc)
        problems = [
            line for line in tail(log, 2000).splitlines() if "ERROR" in line or "Traceback" in line
        ]
        result["server_log_errors"] = problems[:10]
        return result


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    mode = f"fixed rate {args.rate:g} msgs/s" if args.rate else "max (window-limited)"
    print(
        f"\npairs={args.pairs} messages/pair={args.messages} payload={args.payload_bytes} B "
        f"window={args.window} mode={mode} load processes={args.procs} cpus={os.cpu_count()}"
    )
    head = f"{'target':<8}{'sent/s':>10}{'msgs/s':>10}"
    head += (
        f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'lost':>7}{'dup':>6}{'errors':>8}"
    )
    if args.rate:
        head += f"{'lag p99':>9}"
    print(head)
    for name, r in results.items():
        lat = r["latency_ms"]
        line = (
            f"{name:<8}{r['answered_per_s']:>10.0f}{r['delivered_per_s']:>10.0f}"
            f"{lat['p50']:>9.2f}{lat['p90']:>9.2f}"
            f"{lat['p99']:>9.2f}{lat['max']:>9.2f}{r['lost']:>7}{r['duplicates']:>6}"
            f"{r['errors']:>8}"
        )
        if args.rate:
            line += f"{r['schedule_lag_ms']['p99']:>9.2f}"
        print(line)
        for s in r["error_samples"]:
            print(f"    {name} error: {s}")
        for s in r["server_log_errors"]:
            print(f"    {name} server log: {s}")
        if r.get("left_in_store", 0):
            print(f"    {name}: {r['left_in_store']} envelopes still queued after the run")
        if r.get("server_error_counts"):
            print(f"    {name} server error counters: {r['server_error_counts']}")
        if r["timed_out"]:
            print(f"    {name}: the measured phase timed out after {args.timeout} s")
    if "porch" in results and "relay" in results:
        p, b = results["porch"], results["relay"]
        print(
            f"porch/relay: throughput x{p['delivered_per_s'] / b['delivered_per_s']:.2f}, "
            f"p50 x{p['latency_ms']['p50'] / b['latency_ms']['p50']:.1f}, "
            f"p99 x{p['latency_ms']['p99'] / b['latency_ms']['p99']:.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="Porch vs bare relay: N sender/receiver pairs.")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--messages", type=int, default=5000, help="measured messages per pair")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, help="fixed offered load, messages/s in total")
    mode.add_argument("--max", action="store_true", help="as fast as the window allows (default)")
    parser.add_argument("--payload-bytes", type=int, default=300, help="body size before base64")
    parser.add_argument("--window", type=int, default=64, help="unanswered sends per sender")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured messages per pair")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed per phase")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--porch-only", action="store_true")
    target.add_argument("--relay-only", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.pairs < 1 or args.messages < 1 or args.window < 1 or args.payload_bytes < 0:
        parser.error("--pairs, --messages and --window must be positive")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")

    targets = ["porch"] if args.porch_only else ["relay"] if args.relay_only else ["porch", "relay"]
    results: dict[str, dict[str, Any]] = {}
    for name in targets:
        print(f"{name}: starting", file=sys.stderr)
        results[name] = run_target(name, args)
    print_table(results, args)

    if args.json:
        doc: dict[str, Any] = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "results": results,
        }
        if "porch" in results and "relay" in results:
            p, b = results["porch"], results["relay"]
            doc["ratio"] = {
                "throughput": p["delivered_per_s"] / b["delivered_per_s"],
                "p50": p["latency_ms"]["p50"] / b["latency_ms"]["p50"],
                "p99": p["latency_ms"]["p99"] / b["latency_ms"]["p99"],
            }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    ok = all(
        r["lost"] == 0 and r["errors"] == 0 and not r["timed_out"] and not r.get("left_in_store")
        for r in results.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
