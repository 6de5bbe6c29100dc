"""Start-up is lazy: `porch --version` and `--help` load neither the SDK nor the server, and
`porch send` loads the SDK but not the server, Textual or the bench (measured, not timed:
timings on a shared machine would be flaky; docs/design.md has the figures)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("porch.server", "porch.tui", "porch.bench", "fastapi", "uvicorn", "textual")
SDK = ("porch.client.client", "httpx", "vodozemac", "websockets", "cryptography")

PROBE = """
import json, sys
from porch.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""


def _loaded(*argv: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def _under(modules: set[str], roots: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)}


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["send", "--help"]])
def test_version_and_help_load_nothing_heavy(argv: list[str]) -> None:
    loaded = _loaded(*argv)
    assert _under(loaded, HEAVY + SDK) == set()
    assert "asyncio" not in loaded


def test_send_loads_the_sdk_but_not_the_server_or_tui(tmp_path: object) -> None:
    loaded = _loaded("send", "--profile", str(tmp_path), "--to", "@nobody", "hi")
    assert "porch.client.client" in loaded  # it did get as far as the SDK
    assert _under(loaded, HEAVY) == set()
