"""The served app's shell in headless Chromium: it loads under the strict CSP with nothing
refused and no error, asks nothing of another origin, is an installable PWA (manifest, icons,
a service worker Chromium accepts), and axe-core finds nothing serious in light or dark mode.
Prints the two measurements docs/performance.md records ("Browser client")."""

from __future__ import annotations

import gzip
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page

from tests.e2e import browser as chromium
from tests.e2e.pages import axe_context
from tests.integration.server import ServerProcess

# The app has drawn something a person can use: a control, or text other than the static
# "Loading Porch…" of index.html.
FIRST_RENDER = """() => {
  const app = document.getElementById("app");
  return !!app && (app.querySelector("input, button, textarea, select, a[href]") !== null
    || !app.textContent.startsWith("Loading"));
}"""
# Budgets that a regression would break (today's figures are in docs/performance.md).
RENDER_BUDGET_MS = 5000
GZIP_BUDGET_BYTES = 512 * 1024


async def _open(page: Page, url: str) -> float:
    """Navigate and wait for the first interactive render; milliseconds from the navigation's
    start by the page's own clock (performance.now() counts from the time origin)."""
    await page.goto(url)
    await page.wait_for_function(FIRST_RENDER)
    return float(await page.evaluate("performance.now()"))


async def test_shell_loads_under_the_policy_from_this_origin_only(
    browser: Browser, web_server: ServerProcess
) -> None:
    page = await browser.new_page()
    seen = await chromium.watch(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    render_ms = await _open(page, web_server.url + "/")
    await page.wait_for_load_state("networkidle")
    # A screen's path falls back to the same shell.
    await _open(page, web_server.url + "/chats/1")
    await page.wait_for_load_state("networkidle")
    print(f"\nfirst interactive render: {render_ms:.0f} ms after navigation")
    assert seen.problems() == []
    foreign = [u for u in requested if not u.startswith((web_server.url + "/", "data:", "blob:"))]
    assert foreign == []
    assert any("/assets/" in u and u.endswith(".js") for u in requested)
    assert render_ms < RENDER_BUDGET_MS


async def test_installable_with_manifest_icons_and_service_worker(
    launch_profile: Callable[[str], Awaitable[BrowserContext]], web_server: ServerProcess
) -> None:
    # A profile on disk: Chromium never calls an incognito window's app installable.
    context = await launch_profile("pwa")
    page = await context.new_page()
    seen = await chromium.watch(page)
    await _open(page, web_server.url + "/")
    cdp = await page.context.new_cdp_session(page)
    manifest = await cdp.send("Page.getAppManifest")
    assert manifest["url"] == web_server.url + "/manifest.webmanifest"
    assert manifest["errors"] == []
    data = await page.evaluate("fetch('/manifest.webmanifest').then((r) => r.json())")
    assert data["name"] == "Porch" and data["start_url"] == "/"
    purposes = set()
    for icon in data["icons"]:
        response = await page.request.get(web_server.url + icon["src"])
        assert response.status == 200, icon
        assert response.headers["content-type"] == "image/png"
        width, height = Image.open(io.BytesIO(await response.body())).size
        assert f"{width}x{height}" == icon["sizes"]
        purposes.add(icon["purpose"])
    assert purposes == {"any", "maskable"}

    # The service worker registers (same origin, its own CSP) and takes the page's scope.
    scope = await page.evaluate(
        """async () => {
          const registration = await navigator.serviceWorker.register("/sw.js");
          await navigator.serviceWorker.ready;
          return registration.scope;
        }"""
    )
    assert scope == web_server.url + "/"
    sw = await page.request.get(web_server.url + "/sw.js")
    assert sw.headers["cache-control"] == "no-cache"
    assert sw.headers["content-type"].startswith("text/javascript")
    await page.reload()
    installability = await cdp.send("Page.getInstallabilityErrors")
    assert installability["installabilityErrors"] == []
    assert seen.problems() == []
    await context.close()


async def _axe(page: Page) -> list[dict[str, Any]]:
    result = await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    return list(result["violations"])


async def test_axe_finds_nothing_serious_in_light_or_dark(
    browser: Browser, web_server: ServerProcess
) -> None:
    # axe-core from web/node_modules (npm devDependency), never a CDN. An init script comes in
    # through the DevTools protocol, so the page's CSP stays as strict as it is for people.
    context = await axe_context(browser)
    page = await context.new_page()
    findings: dict[str, list[dict[str, Any]]] = {}
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        await _open(page, web_server.url + "/")
        findings[scheme] = await _axe(page)
    for scheme, violations in findings.items():
        summary = [f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes)" for v in violations]
        print(f"\naxe-core, {scheme}: {', '.join(summary) or 'no findings'}")
    serious = [
        (scheme, v["id"], v["help"], [n["target"] for n in v["nodes"]])
        for scheme, violations in findings.items()
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    await context.close()


def test_built_assets_fit_the_size_budget(web_dist: Path) -> None:
    sizes = {
        str(path.relative_to(web_dist)): len(gzip.compress(path.read_bytes(), compresslevel=9))
        for path in sorted(web_dist.rglob("*"))
        if path.is_file() and path.suffix in (".html", ".js", ".css", ".wasm", ".webmanifest")
    }
    total = sum(sizes.values())
    print("\n" + "\n".join(f"gzip {size:>8} B  {name}" for name, size in sizes.items()))
    print(f"gzip {total:>8} B  total (html, js, css, wasm, manifest; icons not counted)")
    assert any(name.startswith("assets/") and name.endswith(".wasm") for name in sizes)
    assert total < GZIP_BUDGET_BYTES


async def test_the_watch_sees_what_the_policy_refuses(
    browser: Browser, web_server: ServerProcess
) -> None:
    # The checks above are only as good as the watch: an inline script and a third-party
    # fetch must both be refused by the policy and reported.
    page = await browser.new_page()
    seen = await chromium.watch(page)
    await _open(page, web_server.url + "/")
    await page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.injected = 1";
          document.body.append(s);
          return fetch("https://third-party.example/x").catch(() => null);
        }"""
    )
    await page.wait_for_function("() => true")
    assert await page.evaluate("window.injected === undefined")
    directives = {v["directive"] for v in seen.csp_violations}
    assert {"script-src-elem", "connect-src"} <= directives
