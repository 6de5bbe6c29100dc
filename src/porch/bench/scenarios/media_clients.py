"""The load processes of ``porch bench media``: the sender and the receiver of one run.

Both are SDK clients (``porch.client.Client`` on a registered profile), one process each,
spawned afresh for every run so that each process's peak RSS (``ru_maxrss``) belongs to that
run. They follow the driver's steps (each answered ``step``):

- ``connect``: open the profile and connect.
- ``upload``: the sender runs ``send_file`` to the receiver's account and answers with the
  time from the call to the server's acknowledgement of the message, and its client id.
- ``arrive`` ID: the receiver waits until message ID (with its attachment pointer) is in its
  local history (it is online during the upload, so this is normally at once).
- ``download``: the receiver runs ``download`` on that pointer (fetch, verify digest and MAC,
  decrypt into the profile's downloads) and answers with the time and the file's path.
- ``close`` ID: the receiver sends its outbox (the delivery receipt) and the sender waits for
  that receipt on message ID, so no envelope is left queued on the server; each process
  returns its peak RSS.

A process answers a step its role has no part in at once, with None.
CPU seconds are this process's (all threads: ``RUSAGE_SELF``) over the timed call only.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from porch.bench.driver import Channel
from porch.client import Client
from porch.client.events import ReceiptEvent

STEP_WAIT = 3600.0  # seconds a process waits for the driver's next step
POLL = 0.02  # seconds between looks at the local history
RECEIPT_WAIT = 10.0  # seconds the sender waits at close for the delivery receipt
ACTIONS = ("upload", "arrive", "download", "close")  # the steps after "connect"


@dataclass
class Spec:
    role: str  # "sender" or "receiver"
    profile: str  # the SDK profile directory
    peer: str  # the other account's id
    source: str = ""  # sender: the file to send
    timeout: float = 600.0  # seconds allowed for connecting, and for each timed call


@dataclass
class Phase:
    """One timed SDK call in a load process."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    transfer_s: float = 0.0  # until the SDK's progress first reported every byte moved
    error: str = ""


@dataclass
class Result:
    role: str
    peak_rss_mb: float = 0.0  # ru_maxrss over the process's life
    extra: dict[str, Any] = field(default_factory=dict)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _failure(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    name = type(exc).__name__ + (f"({code})" if code else "")
    return f"{name}: {exc}"[:300]


class _Progress:
    """The SDK's progress callback: shown by the driver, and the moment the last byte moved
    (upload: every part sent, before completion and the message; download: the last byte of
    the blob fetched, before the SDK's passes over the local file) noted in
    ``phase.transfer_s``."""

    def __init__(self, channel: Channel, label: str, phase: Phase) -> None:
        self.channel, self.label, self.phase = channel, label, phase
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        self.channel.progress(self.label, done, total)
        if done >= total and not self.phase.transfer_s:
            self.phase.transfer_s = round(time.perf_counter() - self.t0, 3)


class _Timed:
    """``async with _Timed(phase):`` fills ``phase`` with the block's wall and CPU time, and
    records an exception from it instead of ending the process (the run fails, not the bench)."""

    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    async def __aenter__(self) -> _Timed:
        self._t0, self._cpu0 = time.perf_counter(), _cpu_s()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> bool:
        self.phase.wall_s = round(time.perf_counter() - self._t0, 3)
        self.phase.cpu_s = round(_cpu_s() - self._cpu0, 3)
        if isinstance(exc, Exception):
            self.phase.error = _failure(exc)
            return True
        return False


class _Sender:
    def __init__(self, client: Client, spec: Spec, channel: Channel, result: Result) -> None:
        self.client, self.spec, self.channel, self.result = client, spec, channel, result

    async def upload(self, _: Any) -> tuple[Phase, str]:
        phase = Phase()
        client_id = ""
        async with _Timed(phase):
            sent = await asyncio.wait_for(
                self.client.send_file(
                    self.spec.peer,
                    Path(self.spec.source),
                    progress=_Progress(self.channel, "upload", phase),
                    timeout=self.spec.timeout,
                ),
                self.spec.timeout,
            )
            client_id = sent.id
        return phase, client_id

    async def close(self, client_id: Any) -> None:
        """Wait for the delivery receipt of ``client_id`` (the events queue keeps it even when
        it came before this step)."""
        self.result.extra["receipt"] = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RECEIPT_WAIT):
                async for event in self.client.events():
                    if isinstance(event, ReceiptEvent) and client_id in event.ids:
                        self.result.extra["receipt"] = True
                        return


class _Receiver:
    def __init__(self, client: Client, spec: Spec, channel: Channel, result: Result) -> None:
        self.client, self.spec, self.channel, self.result = client, spec, channel, result
        self.client_id = ""
        self.attachment: Any = None

    async def arrive(self, client_id: Any) -> Phase:
        """Wait until message ``client_id`` with its attachment pointer is stored here."""
        phase = Phase()
        self.client_id, self.attachment = str(client_id), None
        async with _Timed(phase):
            self.attachment = await asyncio.wait_for(self._attachment(), self.spec.timeout)
        return phase

    async def _attachment(self) -> Any:
        while True:
            for m in self.client.history(self.spec.peer):
                if m.client_id == self.client_id and m.attachments:
                    return m.attachments[0]
            await asyncio.sleep(POLL)

    async def download(self, _: Any) -> tuple[Phase, str]:
        phase = Phase()
        if self.attachment is None:
            phase.error = "the message with the attachment never arrived"
            return phase, ""
        path = ""
        async with _Timed(phase):
            got = await asyncio.wait_for(
                self.client.download(
                    self.attachment,
                    peer=self.spec.peer,
                    client_id=self.client_id,
                    progress=_Progress(self.channel, "download", phase),
                ),
                self.spec.timeout,
            )
            path = str(got)
        return phase, path

    async def close(self, _: Any) -> None:
        self.result.extra["flushed"] = await self.client.flush(RECEIPT_WAIT)


async def work(spec: Spec, channel: Channel) -> Result:
    result = Result(spec.role)
    async with Client(Path(spec.profile)) as client:
        role = (_Sender if spec.role == "sender" else _Receiver)(client, spec, channel, result)
        while True:
            action, arg = await channel.wait("step", STEP_WAIT)
            if action == "connect":
                await client.wait_connected(spec.timeout)
                channel.send("step")
                continue
            handler = getattr(role, action, None) if action in ACTIONS else None
            answer = await handler(arg) if handler is not None else None
            if action == "close":
                break
            channel.send("step", answer)
    result.peak_rss_mb = _peak_rss_mb()
    return result
