"""The browser client's crypto core, run in Node, as a peer a Python test can talk to.

web/test/interop/peer.ts (built into web/.interop/peer.js) answers one JSON request per line on
stdin with one JSON line on stdout and keeps its libolm state between requests, so a test can
hold a conversation with it. Binary values are unpadded standard base64, as on the wire.

Without Node.js and the web client's packages (web/node_modules, from `make web-test` or
`cd web && npm ci`) the tests skip, saying how to get them; under CI (CI=true) they fail, so
CI can never pass without running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
PEER = WEB / ".interop" / "peer.js"
# One request is a few kB of JSON and libolm answers in milliseconds; this bounds a stuck peer.
BUILD_TIMEOUT_S = 120
STOP_TIMEOUT_S = 10


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI=true: the browser interop tests must run)")
    pytest.skip(reason)


def node_and_npm() -> tuple[str, str]:
    """Paths of node and npm, or skip (locally) / fail (CI) with how to install them."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable(
            "Node.js 20+ and npm are not installed; install them (e.g. `apt-get install nodejs "
            "npm`) to run the browser interop tests"
        )
    if not (WEB / "node_modules").is_dir():
        _unavailable("web/node_modules is missing; run `make web-test` or `cd web && npm ci` first")
    assert node is not None and npm is not None
    return node, npm


class PeerError(Exception):
    """The JavaScript peer refused a request; ``code`` is the TypeScript error's code."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class WebPeer:
    """A running peer process; use as a context manager."""

    def __init__(self) -> None:
        node, npm = node_and_npm()
        subprocess.run(
            [npm, "run", "--silent", "interop:build"],
            cwd=WEB,
            check=True,
            timeout=BUILD_TIMEOUT_S,
            capture_output=True,
        )
        self._proc = subprocess.Popen(
            [node, str(PEER)],
            cwd=WEB,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> WebPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(orjson.dumps({"op": op, **fields}) + b"\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            stderr = self._proc.stderr.read().decode() if self._proc.stderr else ""
            raise RuntimeError(f"the web peer exited: {stderr[-2000:]}")
        answer: dict[str, Any] = orjson.loads(line)
        if not answer.pop("ok"):
            raise PeerError(answer["error"], answer.get("code"))
        return answer
