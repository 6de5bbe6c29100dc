"""Load processes: scenarios run their clients here, never in the server's process.

A scenario hands :class:`Workers` a module-level ``async def work(spec, channel)`` and one
spec per process. Each process raises its open-file limit, runs ``work`` on uvloop and talks
to the driver through a pipe: :meth:`Channel.send` a stage name (``"connected"``...),
:meth:`Channel.wait` for the driver's go-ahead, :meth:`Channel.progress` for the progress line
on stderr. The return value of ``work`` comes back from :meth:`Workers.results`.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection, wait
from typing import Any

import uvloop

from porch.bench.relay_server import raise_nofile

WorkFn = Callable[[Any, "Channel"], Coroutine[Any, Any, Any]]


class LoadError(RuntimeError):
    """A load process failed or fell silent."""


class Channel:
    """The worker's end of the pipe to the driver."""

    def __init__(self, pipe: Connection) -> None:
        self._pipe = pipe
        self._last_progress = 0.0

    def send(self, kind: str, payload: Any = None) -> None:
        self._pipe.send((kind, payload))

    def progress(self, label: str, done: int, total: int, force: bool = False) -> None:
        """Report progress (rate-limited to 4 per second unless ``force``)."""
        now = time.monotonic()
        if force or done >= total or now - self._last_progress >= 0.25:
            self._last_progress = now
            self._pipe.send(("progress", (label, done, total)))

    async def wait(self, kind: str, timeout: float) -> Any:
        """Wait for the driver's ``kind`` message; return its payload."""

        def get() -> Any:
            if not self._pipe.poll(timeout):
                raise TimeoutError(f"no {kind!r} from the benchmark driver within {timeout:.0f} s")
            got, payload = self._pipe.recv()
            if got != kind:
                raise RuntimeError(f"driver sent {got!r}, expected {kind!r}")
            return payload

        return await asyncio.to_thread(get)


def _entry(fn: WorkFn, spec: Any, pipe: Connection) -> None:
    raise_nofile()
    channel = Channel(pipe)
    try:
        result: Any = uvloop.run(fn(spec, channel))
    except BaseException as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        pipe.send(("error", detail))
    else:
        pipe.send(("done", result))


class Workers:
    """Load processes (spawned, so they share nothing with the driver but their spec)."""

    def __init__(self, fn: WorkFn, specs: list[Any]) -> None:
        ctx = mp.get_context("spawn")
        self._procs: list[Any] = []
        self._pipes: list[Connection] = []
        for spec in specs:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_entry, args=(fn, spec, there), daemon=True)
            proc.start()
            there.close()
            self._procs.append(proc)
            self._pipes.append(here)
        self._progress_shown = False

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        return [int(p.pid) for p in self._procs if p.pid is not None]

    def broadcast(self, kind: str, payload: Any = None) -> None:
        for pipe in self._pipes:
            pipe.send((kind, payload))

    def expect(self, kind: str, timeout: float) -> list[Any]:
        """Wait until every process sent ``kind``; show their progress meanwhile."""
        deadline = time.monotonic() + timeout
        got: dict[int, Any] = {}
        progress: dict[int, tuple[str, int, int]] = {}
        try:
            while len(got) < len(self._pipes):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LoadError(
                        f"{len(self._pipes) - len(got)} load process(es) sent no {kind!r} within "
                        f"{timeout:.0f} s; the target may be overloaded: try smaller numbers or "
                        "a longer --timeout"
                    )
                pending = [p for i, p in enumerate(self._pipes) if i not in got]
                for ready in wait(pending, min(left, 1.0)):
                    i = self._pipes.index(ready)  # type: ignore[arg-type]
                    pipe = self._pipes[i]
                    try:
                        what, payload = pipe.recv()
                    except EOFError:
                        raise LoadError(f"load process {i} exited without a word") from None
                    if what == "error":
                        raise LoadError(f"load process {i} failed: {payload}")
                    if what == "progress":
                        progress[i] = payload
                        self._show(progress)
                    elif what == kind:
                        got[i] = payload
                    else:
                        raise LoadError(f"load process {i} sent {what!r}, expected {kind!r}")
        finally:
            if self._progress_shown:
                print(file=sys.stderr, flush=True)
                self._progress_shown = False
        return [got[i] for i in range(len(self._pipes))]

    def _show(self, progress: dict[int, tuple[str, int, int]]) -> None:
        label = next(iter(progress.values()))[0]
        done = sum(p[1] for p in progress.values())
        total = sum(p[2] for p in progress.values())
        print(f"\r  {label}: {done}/{total}   ", end="", file=sys.stderr, flush=True)
        self._progress_shown = True

    def results(self, timeout: float) -> list[Any]:
        return self.expect("done", timeout)

    def close(self) -> None:
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for pipe in self._pipes:
            pipe.close()


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """Deal ``items`` round-robin into ``parts`` non-empty lists (fewer if there are few)."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


def source_address(i: int, count: int) -> str:
    """The i-th client source address of ``count``: 127.0.0.2, 127.0.0.3, ... (one address
    has only ~28k ephemeral ports toward one server port)."""
    return f"127.0.0.{2 + i % max(1, min(count, 250))}"
