"""pairs' load process: senders and receivers of N pairs, driven over a pipe by pairs.py.

Against Porch and the protocol relay a sender's window is freed by the target's ``sent``
answer, and a receiver acknowledges what it got in batches (every 64 envelopes or 2 ms).
Against the bare relay (``Spec.bare``), which forwards the sender's ``send`` frames untouched
and answers nothing, the sender names its receiver in the handshake (bare_relay.py), the
receiver reads the body out of the forwarded ``send`` frame, frees its sender's window itself
(both ends of a pair live in this process) and sends no acks: the relay would drop them unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from array import array
from dataclasses import dataclass, field

from porch.bench.driver import Channel
from porch.bench.payload import ACK_BATCH, ACK_EVERY, MAX_ACK_IDS, Bodies, read_header, send_frame
from porch.bench.raw import RawConnection, RawDevice
from porch.protocol import client_frames as cf

# How long a finished phase waits for its last answers before it ends anyway.
ANSWER_WAIT_S = 5.0


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
    bare: bool = False  # the target is the bare relay (module docstring)


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
    cpu_s: float = 0.0  # this load process's CPU time (user + system) in the measured phase
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
        # Sends not yet answered (`sent`, an error with its ref, or the bare relay's forward):
        # a phase ends when they are none, so that no answer of one phase is counted in the
        # next, nor left out of its own (a busy machine reads the last `sent` after the last
        # envelope).
        self.in_flight = 0
        self.all_answered = asyncio.Event()
        self.all_answered.set()

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
                self.answered()
            elif kind == "error":
                self.error(json.dumps(frame))
                if frame.get("ref") is not None:
                    self.answered()

    async def read_receiver(self) -> None:
        while True:
            frame = await self.receiver.recv_frame()
            kind = frame.get("type")
            if kind == "envelope":
                now = time.time_ns()
                self.pending_acks.append(frame["id"])
                if len(self.pending_acks) >= ACK_BATCH:
                    await self.flush_acks()
                self.count(frame["body"], now)
            elif kind == "send" and self.spec.bare:
                # The sender's own frame, forwarded untouched: its receipt is the answer.
                self.answered()
                self.count(frame["destinations"][0]["devices"][0]["body"], time.time_ns())
            elif kind == "error":
                self.error(json.dumps(frame))

    def answered(self) -> None:
        self.window.release()
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.all_answered.set()

    def count(self, body: str, now: int) -> None:
        sent_ns, seq = read_header(body)
        if seq >= len(self.seen):
            self.error(f"unexpected sequence number {seq}")
            return
        if self.seen[seq]:
            self.result.duplicates += 1
            return
        self.seen[seq] = 1
        if self.phase_lo <= seq < self.phase_lo + self.phase_target:
            if self.measuring:
                self.latencies.append((now - sent_ns) // 1000)
                self.recv_ns.append(now)
            self.last_ns = now
            self.phase_count += 1
            if self.phase_count == self.phase_target:
                self.phase_done.set()

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
            self.in_flight += 1
            self.all_answered.clear()
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
    cpu0 = time.process_time()
    senders = [asyncio.create_task(p.send(lo, count, start_ns, rate)) for p in pairs]
    try:
        async with asyncio.timeout(limit_s):
            await asyncio.gather(*(p.phase_done.wait() for p in pairs), *senders)
    except TimeoutError:
        return False
    finally:
        for t in senders:
            t.cancel()
        if measuring:
            # This process's CPU over exactly the measured phase (not the go/close around it).
            pairs[0].result.cpu_s = time.process_time() - cpu0
    # Every send of the phase answered, for at most ANSWER_WAIT_S more (the figures are taken
    # already: this only keeps the counts of answers exact).
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ANSWER_WAIT_S):
            await asyncio.gather(*(p.all_answered.wait() for p in pairs))
    return True


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result(expected=spec.messages * len(spec.pairs))
    # Receivers first, so that the relay (which keeps nothing) has somewhere to deliver.
    receivers = await asyncio.gather(
        *(RawConnection.for_device(spec.receiver_url, r) for _, r in spec.pairs)
    )
    senders = await asyncio.gather(
        *(
            RawConnection.for_device(spec.sender_url, s, to=r.account_id if spec.bare else None)
            for s, r in spec.pairs
        )
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
