"""drain: how fast a device that was offline receives its backlog.

A sender sends M messages to a device that is not connected and waits until every one is
answered ``sent`` (stored). Then the device connects; the measured phase runs from the moment
it starts connecting to the last envelope of the backlog, with the device acknowledging in
batches (every 64 envelopes or 2 ms) as a real client does. Drain rate = M / that time. On a
cluster the sender uses node A and the device node B. Not run against the relays, which keep
nothing for a device that is offline. Server CPU per message = the server's CPU time over the
measured phase / envelopes received (cpu.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from porch.bench import cpu
from porch.bench.driver import Channel, Workers
from porch.bench.payload import ACK_BATCH, ACK_EVERY, MAX_ACK_IDS, Bodies, read_header, send_frame
from porch.bench.raw import RawConnection, RawDevice
from porch.bench.scenarios.base import CPU_COLUMNS, Scenario, UsageError, duplicates_note, register
from porch.bench.stats import ProcessSampler
from porch.bench.targets import Target
from porch.protocol import client_frames as cf


@dataclass
class Spec:
    sender_url: str
    receiver_url: str
    sender: RawDevice
    receiver: RawDevice
    messages: int
    window: int
    payload_bytes: int
    timeout: float
    batch: bool


@dataclass
class Result:
    stored: int = 0
    store_s: float = 0.0
    received: int = 0
    duplicates: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    connect_s: float = 0.0  # start of connecting -> ready
    first_s: float = 0.0  # start of connecting -> first envelope
    drained_s: float = 0.0  # start of connecting -> "drained" frame (0: never came)
    last_s: float = 0.0  # start of connecting -> last envelope of the backlog
    cpu_s: float = 0.0  # the device's process CPU time over the same span
    timed_out: bool = False

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


async def _store(spec: Spec, channel: Channel, result: Result) -> None:
    conn = await RawConnection.for_device(spec.sender_url, spec.sender)
    window = asyncio.Semaphore(spec.window)
    bodies = Bodies(spec.payload_bytes)
    done = asyncio.Event()

    async def read() -> None:
        answered = 0
        while answered < spec.messages:
            frame = await conn.recv_frame()
            if frame.get("type") == "sent":
                answered += 1
                result.stored += 1
                window.release()
                channel.progress("stored", result.stored, spec.messages)
            elif frame.get("type") == "error":
                result.error(json.dumps(frame))
                if frame.get("ref") is not None:
                    answered += 1
                    window.release()
        done.set()

    started = time.monotonic()
    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(spec.timeout):
            for seq in range(spec.messages):
                await window.acquire()
                body = bodies.body(time.time_ns(), seq)
                await conn.send_frame(send_frame(f"d{seq}", spec.receiver, body))
            await done.wait()
    finally:
        reader.cancel()
        result.store_s = time.monotonic() - started
        await conn.close()


async def _drain(spec: Spec, result: Result) -> None:
    seen = bytearray(spec.messages)
    pending: list[int] = []
    cpu0 = time.process_time()
    t0 = time.monotonic()
    conn = await RawConnection.for_device(spec.receiver_url, spec.receiver, batch=spec.batch)
    result.connect_s = time.monotonic() - t0

    async def flush() -> None:
        nonlocal pending
        while pending:
            ids, pending = pending[:MAX_ACK_IDS], pending[MAX_ACK_IDS:]
            await conn.send_frame(cf.ack(ids))

    async def ack_timer() -> None:
        while True:
            await asyncio.sleep(ACK_EVERY)
            await flush()

    timer = asyncio.create_task(ack_timer())
    try:
        async with asyncio.timeout(spec.timeout):
            while result.received < spec.messages:
                frame = await conn.recv_frame()
                kind = frame.get("type")
                if kind in ("envelope", "envelopes"):
                    now = time.monotonic()
                    if not result.first_s:
                        result.first_s = now - t0
                    items = frame["items"] if kind == "envelopes" else [frame]
                    for item in items:
                        pending.append(item["id"])
                        _, seq = read_header(item["body"])
                        if seq >= spec.messages:
                            result.error(f"unexpected sequence number {seq}")
                        elif seen[seq]:
                            result.duplicates += 1
                        else:
                            seen[seq] = 1
                            result.received += 1
                            result.last_s = now - t0
                    if len(pending) >= ACK_BATCH:
                        await flush()
                elif kind == "drained":
                    result.drained_s = time.monotonic() - t0
                elif kind == "error":
                    result.error(json.dumps(frame))
        result.cpu_s = time.process_time() - cpu0  # the whole backlog is in: before the acks
    except TimeoutError:
        result.timed_out = True
    finally:
        timer.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await flush()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await conn.close()


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result()
    await _store(spec, channel, result)
    channel.send("stored")
    await channel.wait("go", 60)
    await _drain(spec, result)
    return result


@register
class Drain(Scenario):
    name = "drain"
    help = "a device offline with a backlog of M messages connects: drain rate"
    supported = ("sqlite", "sqlite-websockets", "cluster")
    default_targets = ("sqlite",)
    headline = ("drain_per_s", "msgs/s")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--messages", type=int, default=10_000, help="backlog size M")
        parser.add_argument("--payload-bytes", type=int, default=300, help="body before base64")
        parser.add_argument(
            "--window", type=int, default=256, help="unanswered sends while storing"
        )
        parser.add_argument(
            "--no-batch",
            dest="batch",
            action="store_false",
            help="one envelope a frame (the receiver does not ask for 'envelopes' batches)",
        )

    def check(self) -> None:
        if self.args.messages < 1 or self.args.window < 1 or self.args.payload_bytes < 0:
            raise UsageError("--messages and --window must be positive")

    def setup(self, target: Target) -> None:
        self.devices = target.provision(2, keys=True)

    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        a = self.args
        urls = target.ws_urls
        sender, receiver = self.devices
        spec = Spec(
            urls[0],
            urls[-1],
            sender,
            receiver,
            a.messages,
            a.window,
            a.payload_bytes,
            a.timeout,
            a.batch,
        )
        with Workers(work, [spec]) as workers:
            workers.expect("stored", a.timeout + 30)
            sampler.mark_start()
            workers.broadcast("go")
            (r,) = workers.results(a.timeout + 60)
            server = sampler.mark_end()
        assert isinstance(r, Result)
        out: dict[str, Any] = {
            "drain_per_s": round(r.received / r.last_s, 1) if r.last_s else 0.0,
            "drain_s": round(r.last_s, 4),
            "stored_per_s": round(r.stored / r.store_s, 1) if r.store_s else 0.0,
            "connect_ms": round(r.connect_s * 1000, 2),
            "first_envelope_ms": round(r.first_s * 1000, 2),
            "drained_frame_ms": round(r.drained_s * 1000, 2) if r.drained_s else None,
            "expected": a.messages,
            "stored": r.stored,
            "received": r.received,
            "lost": a.messages - r.received,
            "duplicates": r.duplicates,
            "errors": r.errors,
            "error_samples": r.error_samples,
            "timed_out": r.timed_out,
            "server": vars(server),
            **cpu.figures(server, [r.cpu_s], r.last_s, r.received, target),
            "behind": [],
        }
        if r.duplicates:
            out["behind"].append(duplicates_note(r.duplicates))
        if r.stored < a.messages:
            out["behind"].append(f"only {r.stored} of {a.messages} messages were stored")
        return out

    def columns(self) -> list[tuple[str, str]]:
        return [
            ("stored/s", "stored_per_s"),
            ("drain/s", "drain_per_s"),
            ("drain s", "drain_s"),
            ("first ms", "first_envelope_ms"),
            ("cpu %", "server.cpu_pct"),
            *CPU_COLUMNS,
            ("rss MB", "server.peak_rss_mb"),
            ("lost", "lost"),
            ("dup", "duplicates"),
            ("errors", "errors"),
        ]
