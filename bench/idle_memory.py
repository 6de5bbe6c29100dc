"""Where an idle connection's memory goes: tracemalloc snapshots of `porch serve`, diffed
over N authenticated idle connections (docs/performance.md, "Idle connections").

python bench/idle_memory.py --connections 1000 --hold 12 [--group traceback] [--top 40]

Runs `porch serve` (SQLite, heartbeats every --heartbeat s) under tracemalloc, registers N
accounts, snapshots the server's Python heap, connects and authenticates N connections, holds
them (heartbeats run), snapshots again and prints the growth per connection, by line (or by
the allocating call stack with --group traceback). tracemalloc sees Python's allocations
only: uvloop's and the kernel's buffers show in RSS (`porch bench idle`), not here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

SNAPSHOT_FRAMES = 12


def serve(argv: list[str]) -> None:
    """The server side: `porch serve` with a snapshot written on every SIGUSR1."""
    out = Path(os.environ["IDLE_MEMORY_OUT"])
    count = 0
    tracemalloc.start(SNAPSHOT_FRAMES)

    def dump(_signo: int, _frame: object) -> None:
        nonlocal count
        count += 1
        tracemalloc.take_snapshot().dump(str(out / f"snap{count}.tm"))
        (out / f"snap{count}.done").touch()

    signal.signal(signal.SIGUSR1, dump)
    from porch.cli.main import main

    sys.exit(main(["serve", *argv]))


def _snapshot(proc: asyncio.subprocess.Process, out: Path, n: int) -> tracemalloc.Snapshot:
    proc.send_signal(signal.SIGUSR1)
    done = out / f"snap{n}.done"
    while not done.exists():
        time.sleep(0.1)
    snap = tracemalloc.Snapshot.load(str(out / f"snap{n}.tm"))
    return snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])


async def measure(args: argparse.Namespace) -> None:
    from porch.bench.raw import RawConnection, RawDevice, provision
    from porch.bench.targets import free_port, raised_limits

    tmp = Path(tempfile.mkdtemp(prefix="idle-memory-"))
    port = free_port()
    env = dict(os.environ) | raised_limits()
    env |= {
        "PORCH_SMS_PROVIDER": "console",
        "PORCH_HEARTBEAT_SECONDS": str(args.heartbeat),
        "IDLE_MEMORY_OUT": str(tmp),
    }
    data = tmp / "data"
    data.mkdir()
    cmd = [__file__, "--serve", "--port", str(port), "--data-dir", str(data)]
    log = (tmp / "server.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *cmd, "--log-level", "warning", env=env, stdout=log, stderr=log
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # Slow to start under tracemalloc (every import is traced): up to 5 minutes.
        for _ in range(3000):
            if proc.returncode is not None:
                raise SystemExit(f"the server exited; see {tmp / 'server.log'}")
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("the server did not start within 5 minutes")
        devices = await provision(base, data, args.connections, concurrency=32, keys=False)
        # One connection first, closed again: what the first one creates once (caches,
        # lazily built module state) is not counted per connection.
        first = await RawConnection.for_device(f"ws://127.0.0.1:{port}/v1/ws", devices[0])
        await first.close()
        await asyncio.sleep(1.0)
        before = _snapshot(proc, tmp, 1)
        gate = asyncio.Semaphore(64)

        async def one(d: RawDevice) -> RawConnection:
            async with gate:
                url = f"ws://127.0.0.1:{port}/v1/ws"
                return await RawConnection.for_device(url, d, ping_interval=None)

        conns = await asyncio.gather(*(one(d) for d in devices))
        await asyncio.sleep(args.hold)
        after = _snapshot(proc, tmp, 2)
        alive = sum(1 for c in conns if not c.closed)
        n = args.connections
        stats = after.compare_to(before, args.group)
        total = sum(s.size_diff for s in stats)
        blocks = sum(s.count_diff for s in stats)
        print(f"snapshots in {tmp}")
        print(f"{alive}/{n} alive; Python heap +{total / n:.0f} B/conn in {blocks / n:.1f} blocks")
        for s in stats[: args.top]:
            if args.group == "traceback":
                print(f"--- {s.size_diff / n:+.0f} B/conn {s.count_diff / n:+.2f} blocks/conn")
                for line in s.traceback.format(limit=SNAPSHOT_FRAMES)[-12:]:
                    print("   ", line)
            else:
                frame = s.traceback[0]
                where = f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
                print(f"{s.size_diff / n:+8.0f} B {s.count_diff / n:+6.2f}  {where}")
        await asyncio.gather(*(c.close() for c in conns))
    finally:
        proc.terminate()
        await proc.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=12.0)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--group", choices=("lineno", "traceback", "filename"), default="lineno")
    parser.add_argument("--top", type=int, default=40)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
