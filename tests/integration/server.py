"""A real `porch serve` process on loopback, for integration tests; or the same app served in
the test's own process, for tests that hand it collaborators (a faulty store, a clock)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from porch.server.settings import Settings


def default_sigint() -> None:
    """A child's `preexec_fn`: SIGINT handled as a terminal's foreground job has it. A suite
    started as a background job (`nohup make test &`) ignores SIGINT, children inherit that,
    and porch rightly leaves an ignored SIGINT ignored (cli/commands.py), so a test's Ctrl-C
    would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(
        self, data_dir: Path, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env or {}
        self.extra_args: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        # 60 s: on a loaded 2-core machine a start alone has taken 20 s.
        env = dict(os.environ)
        env.update(
            {
                "PORCH_LIMIT_CODE_PER_ADDRESS": "100000/1",
                "PORCH_LIMIT_REGISTER_PER_ADDRESS": "100000/1",
                "PORCH_LIMIT_DIRECTORY_PER_ACCOUNT": "100000/1",
                "PORCH_CODE_INTERVAL_SECONDS": "0",
                "PORCH_LIMIT_PROVISIONING_PER_ADDRESS": "100000/1",
                "PORCH_LIMIT_LINK_PER_ADDRESS": "100000/1",
            }
        )
        env.update(self.env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "porch.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                # Ready, and really ours: another process could hold a port we were given.
                if (
                    httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
                    and f"Uvicorn running on http://127.0.0.1:{self.port}"
                    in self.log_path.read_text(errors="replace")
                    and self.proc.poll() is None
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()  # never leave a half-started server behind
        raise RuntimeError(f"server did not become ready in {timeout:.0f} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def queue_depth(self) -> int:
        """Envelopes stored and not yet acknowledged, whatever the backend (from /metrics)."""
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith("porch_queue_depth "):
                return int(float(line.split()[1]))
        raise AssertionError("no porch_queue_depth in /metrics")

    def last_code(self, phone: str) -> str:
        """The newest code the console SMS provider wrote for phone."""
        outbox = self.data_dir / "sms-outbox.jsonl"
        for _ in range(50):
            if outbox.exists():
                for line in reversed(outbox.read_text().splitlines()):
                    entry = json.loads(line)
                    if entry["phone"] == phone:
                        return str(entry["code"])
            time.sleep(0.05)
        raise AssertionError(f"no code for {phone}")


def in_process_settings(srv: ServerProcess, server_env: dict[str, str], **kw: Any) -> Settings:
    """What ServerProcess.start sets, for an app served in this process on srv's port and data
    directory (ServerProcess then only names them and reads the console SMS outbox)."""
    return Settings(
        data_dir=srv.data_dir,
        database_url=server_env.get("PORCH_DATABASE_URL"),
        redis_url=server_env.get("PORCH_REDIS_URL"),
        code_interval_seconds=0,
        limit_code_per_address="100000/1",
        limit_register_per_address="100000/1",
        **kw,
    )


@contextlib.asynccontextmanager
async def serving_in_process(
    app: Any, port: int, config: uvicorn.Config | None = None
) -> AsyncIterator[uvicorn.Server]:
    """uvicorn on loopback in this process, lifespan included, until the block ends; with
    `config` (which names app and port itself), under that configuration."""
    server = uvicorn.Server(
        config
        or uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                assert not task.done(), "the server did not start"
                await asyncio.sleep(0.05)
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
