"""The load processes of ``porch bench fanout``: one sender, and receivers many to a process.

Every process runs the same loop: wait for the driver's ``step`` (action, argument), do it,
answer ``step``. Actions: ``connect`` (the sender connects), ``store`` (the sender sends
sequence numbers 0..K-1 while the receivers are offline, each answered ``sent``), ``online``
(the receivers connect and wait until every device has the backlog), ``mark`` (the measured
phase starts: CPU time is read), ``msg`` N (the sender sends group message N; each receiver
process answers once all its devices have it, or after ``wait_s``), ``close``.

A group message is one ``send`` with one destination per receiver, every device entry without
its own body, and one ``shared`` body (kind 2, Megolm) that carries the send time and the
sequence number (porch.bench.payload).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from porch.bench.driver import Channel
from porch.bench.payload import Bodies, read_header
from porch.bench.raw import RawConnection, RawDevice
from porch.protocol import client_frames as cf

MEGOLM = 2  # ciphertext kind of a group message (spec A)
IN_FLIGHT = 64  # connection attempts in flight per load process
STEP_WAIT = 3600.0  # seconds a process waits for the driver's next step


@dataclass
class Spec:
    role: str  # "sender" or "receivers"
    jobs: list[tuple[str, RawDevice]]  # (ws url, device): the sender's, or these receivers'
    destinations: list[RawDevice]  # the sender's: every receiver
    total: int  # sequence numbers 0..total-1 exist
    stored: int  # 0..stored-1 were sent while the receivers were offline
    payload_bytes: int
    timeout: float
    wait_s: float  # how long a receiver process waits for one message at all its devices


@dataclass
class Result:
    role: str
    sent_ns: bytes = b""  # sender: array("q") per sequence number: when it was sent
    sent_us: bytes = b""  # sender: array("q") per sequence number: send -> "sent" answer
    last_ns: bytes = b""  # receivers: array("q") per sequence number: latest arrival here
    latencies_us: bytes = b""  # receivers: array("q"), one per device per measured message
    devices: int = 0
    received: int = 0
    missing: int = 0  # (device, message) pairs never received
    duplicates: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    connect_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time in the measured phase
    waited_out: int = 0  # messages whose wait_s ran out in this process

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


class Sender:
    def __init__(self, spec: Spec, result: Result) -> None:
        self.spec = spec
        self.result = result
        self.conn: RawConnection | None = None
        self.answers: dict[str, asyncio.Future[int]] = {}
        self.bodies = Bodies(spec.payload_bytes)
        self.destinations = [
            cf.destination(d.account_id, [cf.device_message(d.device_id, d.registration_id)])
            for d in spec.destinations
        ]
        self.sent_ns = array("q", bytes(8 * spec.total))
        self.sent_us = array("q", bytes(8 * spec.total))
        self.reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        url, device = self.spec.jobs[0]
        self.conn = await RawConnection.for_device(url, device)
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.conn is not None
        while True:
            frame = await self.conn.recv_frame()
            kind = frame.get("type")
            ref = frame.get("id") if kind == "sent" else frame.get("ref")
            waiter = self.answers.pop(str(ref), None) if ref is not None else None
            if kind == "error":
                self.result.error(json.dumps(frame))
            if waiter is not None and not waiter.done():
                waiter.set_result(time.time_ns() if kind == "sent" else 0)

    async def send(self, seq: int) -> bool:
        """Send group message ``seq``; True once it is answered ``sent``."""
        assert self.conn is not None
        client_id = f"g{seq}"
        answer = self.answers[client_id] = asyncio.get_running_loop().create_future()
        now = time.time_ns()
        body = self.bodies.body(now, seq)
        await self.conn.send_frame(cf.send(client_id, self.destinations, cf.shared(MEGOLM, body)))
        try:
            async with asyncio.timeout(self.spec.wait_s):
                answered = await answer
        except TimeoutError:
            self.answers.pop(client_id, None)
            self.result.error(f"no answer to group message {seq} in {self.spec.wait_s:g} s")
            return False
        self.sent_ns[seq] = now
        if answered:
            self.sent_us[seq] = (answered - now) // 1000
        return bool(answered)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.conn.close()
        self.result.sent_ns = self.sent_ns.tobytes()
        self.result.sent_us = self.sent_us.tobytes()


class Receivers:
    def __init__(self, spec: Spec, result: Result, channel: Channel) -> None:
        self.spec = spec
        self.result = result
        self.channel = channel
        self.n = len(spec.jobs)
        self.seen = bytearray(self.n * spec.total)
        self.counts = [0] * spec.total
        self.done = [asyncio.Event() for _ in range(spec.total)]
        self.last_ns = array("q", bytes(8 * spec.total))
        self.latencies = array("q")
        self.conns: list[RawConnection] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def online(self) -> None:
        """Connect every device (``"batch": true``) and wait for the stored backlog."""
        gate = asyncio.Semaphore(IN_FLIGHT)
        started = time.monotonic()
        opened = 0

        async def one(i: int, url: str, device: RawDevice) -> None:
            nonlocal opened
            async with gate:
                conn = await RawConnection.for_device(url, device, ping_interval=None, batch=True)
            self.conns.append(conn)
            self.tasks.append(asyncio.create_task(self.read(i, conn)))
            opened += 1
            self.channel.progress("receivers connected", opened, self.n)

        async with asyncio.timeout(self.spec.timeout):
            await asyncio.gather(*(one(i, url, d) for i, (url, d) in enumerate(self.spec.jobs)))
        self.result.connect_s = time.monotonic() - started
        for seq in range(self.spec.stored):
            await self.wait(seq)

    async def read(self, i: int, conn: RawConnection) -> None:
        base = i * self.spec.total
        total, stored = self.spec.total, self.spec.stored
        while True:
            frame = await conn.recv_frame()
            kind = frame.get("type")
            if kind == "error":
                self.result.error(json.dumps(frame))
            if kind not in ("envelope", "envelopes"):
                continue
            now = time.time_ns()
            items = frame["items"] if kind == "envelopes" else [frame]
            for item in items:
                if item.get("kind") != MEGOLM or "body" not in item:
                    self.result.error(f"unexpected envelope: {json.dumps(item)[:200]}")
                    continue
                sent_ns, seq = read_header(item["body"])
                if seq >= total:
                    self.result.error(f"unexpected sequence number {seq}")
                    continue
                if self.seen[base + seq]:
                    self.result.duplicates += 1
                    continue
                self.seen[base + seq] = 1
                self.result.received += 1
                if seq >= stored:
                    self.latencies.append((now - sent_ns) // 1000)
                    self.last_ns[seq] = max(self.last_ns[seq], now)
                self.counts[seq] += 1
                if self.counts[seq] == self.n:
                    self.done[seq].set()
            # Acknowledged once "stored", as a real client does: one ack per frame.
            await conn.send_frame(cf.ack([item["id"] for item in items]))

    async def wait(self, seq: int) -> None:
        try:
            async with asyncio.timeout(self.spec.wait_s):
                await self.done[seq].wait()
        except TimeoutError:
            self.result.waited_out += 1

    async def close(self) -> None:
        # A short grace period: a late duplicate still counts.
        await asyncio.sleep(0.2)
        for t in self.tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                self.result.error(f"connection task failed: {t.exception()!r}")
            t.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
        self.result.devices = self.n
        self.result.missing = self.n * self.spec.total - sum(self.seen)
        self.result.last_ns = self.last_ns.tobytes()
        self.result.latencies_us = self.latencies.tobytes()


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result(spec.role)
    sender = Sender(spec, result) if spec.role == "sender" else None
    receivers = Receivers(spec, result, channel) if spec.role == "receivers" else None
    cpu0 = time.process_time()
    try:
        while True:
            action, arg = await channel.wait("step", STEP_WAIT)
            reply: Any = None
            if action == "close":
                break
            if action == "connect" and sender is not None:
                await sender.connect()
            elif action == "store" and sender is not None:
                for seq in range(spec.stored):
                    await sender.send(seq)
                    channel.progress("stored", seq + 1, spec.stored)
            elif action == "online" and receivers is not None:
                await receivers.online()
            elif action == "mark":
                cpu0 = time.process_time()
            elif action == "msg":
                if sender is not None:
                    reply = await sender.send(int(arg))
                elif receivers is not None:
                    await receivers.wait(int(arg))
                result.cpu_s = time.process_time() - cpu0
            channel.send("step", reply)
    finally:
        if sender is not None:
            await sender.close()
        if receivers is not None:
            await receivers.close()
    return result
