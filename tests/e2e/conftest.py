"""Fixtures of the browser tests: a headless Chromium (tests/e2e/browser.py) and a real
`porch serve` process on loopback that serves the built web app (web/dist) with its API."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from porch.client import Client
from tests.e2e import browser as chromium
from tests.integration.conftest import register
from tests.integration.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
WEB_DIST = REPO / "web" / "dist"


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """web/dist, built first when missing or older than its sources (the Makefile's rule, the
    one `make serve` uses). Without Node.js the tests skip locally and fail under CI."""
    if shutil.which("make") and shutil.which("node") and shutil.which("npm"):
        subprocess.run(["make", "-s", "-C", str(REPO), "web-dist"], check=True)
    if not (WEB_DIST / "index.html").is_file():
        message = "web/dist is not built; install Node.js 20 and npm, then run: make web-dist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return WEB_DIST


@pytest.fixture
def web_server(tmp_path: Path, web_dist: Path) -> Iterator[ServerProcess]:
    """`porch serve` (SQLite, in-process bus) serving the app at its root: its .url is the
    address a person opens, and the app talks to the same origin."""
    srv = ServerProcess(tmp_path / "server-data", env={"PORCH_WEB_DIR": str(web_dist)})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    chromium.require_chromium()
    async with async_playwright() as p:
        yield p


@pytest.fixture
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    """A fresh headless Chromium; each `await browser.new_context()` is a separate profile."""
    b = await chromium.launch(playwright)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def launch_profile(
    playwright: Playwright, tmp_path: Path
) -> Callable[[str], Awaitable[BrowserContext]]:
    """`await launch_profile("alice")`: a browser on tmp_path/chromium-alice. Close it and
    launch the same name again to reopen the browser on the same profile. The caller closes
    what it launched."""

    async def launch(name: str = "default") -> BrowserContext:
        return await chromium.launch_profile(playwright, tmp_path / f"chromium-{name}")

    return launch


@pytest.fixture
def register_client(web_server: ServerProcess, tmp_path: Path) -> Callable[..., Awaitable[Client]]:
    """A Python SDK user on the same server, to talk to the browser user."""
    counter = itertools.count()

    async def make(phone: str | None = None, **kw: str) -> Client:
        return await register(web_server, tmp_path / f"profile-{next(counter)}", phone, **kw)

    return make
