"""Benchmark targets: the servers a scenario runs against, started and stopped here.

- ``sqlite``: one ``porch serve`` on a fresh temporary data directory (SQLite), with the
  gateway's WebSocket on picows, the default (server/gateway/picows_stack.py; ``sqlite-picows``,
  its name while websockets was the default, is an alias).
- ``sqlite-websockets``: the same on websockets' sans-I/O protocol (PORCH_WS_STACK=websockets),
  to compare the two WebSocket layers in one run.
- ``cluster``: K ``porch serve`` nodes sharing a fresh PostgreSQL database (created for the run
  and dropped after it) and Redis; each node has its own data directory.
- ``protocol-relay``: Porch's wire protocol without durability (:mod:`porch.bench.protocol_relay`;
  ``relay``, its old name, is an alias).
- ``bare-relay``: frames forwarded untouched from a sender's socket to its paired receiver's
  (:mod:`porch.bench.bare_relay`), the cost of moving frames and nothing else.

Every server is a subprocess on 127.0.0.1 and a free port, with the console SMS provider and
every ``PORCH_LIMIT_*`` rate limit raised, started from this process after it raised its own
open-file limit (children inherit it). Accounts are registered through one node's HTTP API
(the SMS codes land in that node's ``sms-outbox.jsonl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from porch.bench import services
from porch.bench.raw import RawDevice, provision
from porch.bench.relay_server import raise_nofile
from porch.server.settings import Settings

HOST = "127.0.0.1"
RELAYS = ("protocol-relay", "bare-relay")
#: Single-node SQLite targets, by the WebSocket layer they serve the gateway with.
SQLITE_STACKS = {"sqlite": "picows", "sqlite-websockets": "websockets"}
TARGETS = (*SQLITE_STACKS, "cluster", *RELAYS)
#: Old names still accepted on the command line: the relay of earlier rounds was the protocol
#: relay (it parses Porch's frames and answers each send with two), not a bare one; sqlite was
#: websockets until picows became the default (sqlite-websockets now).
ALIASES = {"relay": "protocol-relay", "sqlite-picows": "sqlite"}
PG_ADMIN_DSN = os.environ.get("PORCH_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PORCH_BENCH_REDIS", "redis://127.0.0.1:6379/0")
# A node imports the whole server before it listens: on a 2-core machine shared with other
# work that took 25-30 s (2026-12-01, load average 19-20), past the 30 s this used to allow.
START_TIMEOUT = float(os.environ.get("PORCH_BENCH_START_TIMEOUT", "120"))


class TargetError(RuntimeError):
    """A target could not be started; the message says what to do."""


def raised_limits() -> dict[str, str]:
    """Every PORCH_LIMIT_* rate limit set high enough never to trigger during a benchmark,
    no spacing between codes to one number (a rerun registers the same numbers), and room for
    every load-generator connection to wait for authentication at once (they all come from
    one address)."""
    limits = {
        f"PORCH_{name.upper()}": "1000000/1"
        for name in Settings.model_fields
        if name.startswith("limit_")
    }
    return limits | {
        "PORCH_CODE_INTERVAL_SECONDS": "0",
        "PORCH_PREAUTH_CONNECTIONS_PER_ADDRESS": "100000",
        "PORCH_PREAUTH_CONNECTIONS_TOTAL": "100000",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    data_dir: Path | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/ws"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, porch: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TargetError(
                    f"{self.name} exited with status {self.proc.returncode}:\n{tail(self.log)}"
                )
            try:
                if porch:
                    if httpx.get(f"{self.http_url}/readyz", timeout=2).status_code == 200:
                        return
                else:
                    with socket.create_connection((HOST, self.port), timeout=1):
                        return
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.05)
        raise TargetError(
            f"{self.name} did not become ready on port {self.port} within {START_TIMEOUT:.0f} s:"
            f"\n{tail(self.log)}"
        )


@dataclass
class Target:
    """A running target. ``nodes[0]`` is where accounts are registered."""

    kind: str
    nodes: list[Node]
    tmp: Path
    database: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def porch(self) -> bool:
        return self.kind not in RELAYS

    @property
    def ws_urls(self) -> list[str]:
        return [n.ws_url for n in self.nodes]

    @property
    def pids(self) -> list[int]:
        return [n.proc.pid for n in self.nodes]

    def service_pids(self) -> dict[str, list[int]]:
        """The cluster's PostgreSQL and Redis processes (services.py); none for other kinds."""
        if self.kind != "cluster" or self.database is None:
            return {}
        return services.service_pids(self.database, urlsplit(REDIS_URL).port or 6379)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "nodes": len(self.nodes)}
        if self.kind == "cluster":
            out["store"] = "postgresql"
            out["bus"] = "redis"
        elif self.kind in SQLITE_STACKS:
            out["store"] = "sqlite"
            out["ws_stack"] = SQLITE_STACKS[self.kind]
        return out | self.extra

    def provision(self, n: int, *, keys: bool = False, concurrency: int = 64) -> list[RawDevice]:
        """Register ``n`` one-device accounts (Porch), or make up ``n`` ids (relays)."""
        if not self.porch:
            return [RawDevice(str(uuid.uuid4()), 1, 1, "x") for _ in range(n)]
        node = self.nodes[0]
        assert node.data_dir is not None
        started = time.monotonic()
        try:
            devices = asyncio.run(
                provision(node.http_url, node.data_dir, n, "+141555", concurrency, keys=keys)
            )
        except Exception as exc:
            first: BaseException = exc
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise TargetError(
                f"registering {n} devices on {self.kind} failed: {type(first).__name__}: "
                f"{first}; see the server log above"
            ) from None
        if n >= 50:
            took = time.monotonic() - started
            print(
                f"  {self.kind}: registered {n} devices in {took:.1f} s ({n / took:.0f}/s)",
                file=sys.stderr,
            )
        return devices

    def queue_left(self, timeout: float = 5.0) -> dict[str, Any]:
        """Envelopes still queued after a run (0 once every ack is processed), error counts."""
        if not self.porch:
            return {}
        depth = -1.0
        errors: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = httpx.get(f"{self.nodes[0].http_url}/metrics", timeout=5).text
            except httpx.HTTPError as exc:
                return {"left_in_store": -1, "metrics_error": repr(exc)}
            errors = {}
            for line in text.splitlines():
                if line.startswith("porch_queue_depth "):
                    depth = float(line.split()[1])
                elif line.startswith("porch_errors_total{"):
                    code = line.split('code="', 1)[1].split('"', 1)[0]
                    errors[code] = float(line.split()[-1])
            if depth == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return {"left_in_store": int(depth), "server_error_counts": errors}

    def connections(self) -> int:
        """Authenticated connections the Porch nodes count (porch_connections, summed)."""
        total = 0
        for node in self.nodes:
            with contextlib.suppress(httpx.HTTPError):
                for line in httpx.get(f"{node.http_url}/metrics", timeout=10).text.splitlines():
                    if line.startswith("porch_connections "):
                        total += int(float(line.split()[1]))
        return total

    def log_errors(self) -> list[str]:
        found: list[str] = []
        for node in self.nodes:
            for line in tail(node.log, 5000).splitlines():
                if "ERROR" in line or "Traceback" in line:
                    found.append(f"{node.name}: {line}")
        return found[:10]

    def log_tails(self) -> str:
        return "\n".join(f"--- {n.name} log (tail) ---\n{tail(n.log)}" for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                _stop(node.proc)
        if self.database is not None:
            with contextlib.suppress(Exception):
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            self.database = None


def _server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    return env | raised_limits() | {"PORCH_SMS_PROVIDER": "console"} | extra


def _start_porch(name: str, tmp: Path, env: dict[str, str]) -> Node:
    port = free_port()
    data = tmp / name
    data.mkdir(parents=True, exist_ok=True)
    log = tmp / f"{name}.log"
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
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    return Node(name, proc, port, log, data)


def _start_relay(kind: str, tmp: Path) -> Node:
    port = free_port()
    log = tmp / f"{kind}.log"
    module = f"porch.bench.{kind.replace('-', '_')}"
    cmd = [sys.executable, "-m", module, "--host", HOST, "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    return Node(kind, proc, port, log)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _check_reachable(what: str, url: str, port_default: int, hint: str) -> None:
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1].split("/", 1)[0]
    host, _, port = rest.partition(":")
    try:
        with socket.create_connection((host or HOST, int(port or port_default)), timeout=2):
            return
    except OSError as exc:
        raise TargetError(f"{what} is not reachable at {url} ({exc}); {hint}") from None


def start(kind: str, tmp: Path, *, nodes: int = 2, env: dict[str, str] | None = None) -> Target:
    """Start a target; the caller must call :meth:`Target.stop` (see :func:`running`)."""
    raise_nofile()
    kind = ALIASES.get(kind, kind)
    server_env = _server_env(env or {})
    if kind in RELAYS:
        target = Target(kind, [_start_relay(kind, tmp)], tmp)
    elif kind in SQLITE_STACKS:
        server_env = {"PORCH_WS_STACK": SQLITE_STACKS[kind]} | server_env
        target = Target(kind, [_start_porch("node", tmp, server_env)], tmp)
    elif kind == "cluster":
        hint = (
            "start PostgreSQL and Redis on 127.0.0.1 (or point PORCH_BENCH_POSTGRES / "
            "PORCH_BENCH_REDIS at them), or leave out --target cluster"
        )
        _check_reachable("PostgreSQL", PG_ADMIN_DSN, 5432, hint)
        _check_reachable("Redis", REDIS_URL, 6379, hint)
        database = f"porch_bench_{secrets.token_hex(6)}"
        asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
        url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}"
        server_env |= {"PORCH_DATABASE_URL": url, "PORCH_REDIS_URL": REDIS_URL}
        target = Target(kind, [], tmp, database=database)
        try:
            # The first node creates the schema; the others start once it is ready.
            target.nodes.append(_start_porch("node-a", tmp, server_env))
            target.nodes[0].wait_ready(True)
            for i in range(1, max(1, nodes)):
                target.nodes.append(_start_porch(f"node-{chr(ord('a') + i)}", tmp, server_env))
        except BaseException:
            target.stop()
            raise
    else:
        raise TargetError(f"unknown target {kind!r}; choose from {', '.join(TARGETS)}")
    try:
        for node in target.nodes:
            node.wait_ready(target.porch)
    except BaseException:
        target.stop()
        raise
    return target


@contextlib.contextmanager
def running(
    kind: str, tmp: Path, *, nodes: int = 2, env: dict[str, str] | None = None
) -> Iterator[Target]:
    target = start(kind, tmp, nodes=nodes, env=env)
    try:
        yield target
    except BaseException:
        print(target.log_tails(), file=sys.stderr)
        raise
    finally:
        target.stop()
