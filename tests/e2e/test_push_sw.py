"""The built service worker (web/src/sw/sw.ts, served at /sw.js) in headless Chromium: a push
delivered through DevTools (ServiceWorker.deliverPushMessage, the push event a push service
would cause) tells the open tab to wake, and with no tab open shows "New message"."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser

from tests.integration.server import ServerProcess

REGISTER = """async () => {
  window.__wakes = [];
  navigator.serviceWorker.addEventListener("message", (e) => window.__wakes.push(e.data));
  await navigator.serviceWorker.register("/sw.js");
  const ready = await navigator.serviceWorker.ready;
  return ready.active !== null;
}"""
NOTIFICATIONS = """async () => {
  const ready = await navigator.serviceWorker.ready;
  return (await ready.getNotifications()).map((n) => ({title: n.title, tag: n.tag}));
}"""


async def test_a_push_wakes_the_tab_or_shows_a_notification(
    browser: Browser, web_server: ServerProcess
) -> None:
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=web_server.url)
    page = await context.new_page()
    await page.goto(web_server.url + "/")
    cdp = await context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    await cdp.send("ServiceWorker.enable")
    assert await page.evaluate(REGISTER)
    async with asyncio.timeout(10):
        while not any(r["scopeURL"] == web_server.url + "/" for r in registrations):
            await asyncio.sleep(0.05)
    registration = next(r for r in registrations if r["scopeURL"] == web_server.url + "/")

    async def push() -> None:
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": web_server.url,
                "registrationId": registration["registrationId"],
                "data": '{"t":"wake"}',
            },
        )

    await push()
    # Polled from here: page.wait_for_function compiles its string with eval in the page, which
    # the app's CSP refuses whenever the first check is false (a slower start of the app).
    async with asyncio.timeout(10):
        while not await page.evaluate("window.__wakes.length > 0"):
            await asyncio.sleep(0.05)
    assert await page.evaluate("window.__wakes") == [{"type": "porch:wake"}]
    # The tab in front shows the message itself: no notification.
    assert await page.evaluate(NOTIFICATIONS) == []

    # No tab of the app open (the page is elsewhere; DevTools stays attached to it).
    await page.goto("about:blank")
    await push()
    await page.goto(web_server.url + "/")
    async with asyncio.timeout(10):
        while not (shown := await page.evaluate(NOTIFICATIONS)):
            await asyncio.sleep(0.1)
    assert shown == [{"title": "New message", "tag": "porch-wake"}]
    await context.close()
