"""The browser scans QR codes with its camera where it has no BarcodeDetector (headless
Chromium on Linux has none): jsQR, loaded as a chunk of its own on the first scan, reads the
frames of Chromium's fake camera, which films a QR code the test draws (tests/e2e/fake_camera.py).
Devices, "Link a new device": the terminal's porch://link code is scanned, the key check shows,
the user confirms and the terminal links (the paste path is tests/e2e/test_web_link_approve.py).
A code that is no link address, a refused camera and a missing one each get a sentence;
"Join by link" scans a group's invite link; and the contact screen scans the other side's
safety number code (74 binary bytes) and compares it. docs/design.md, "Scanning QR codes"."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright, expect

from porch.client import Client
from tests.e2e import browser as chromium
from tests.e2e.fake_camera import camera_args, write_y4m
from tests.e2e.pages import (
    axe_context,
    next_message,
    open_chat,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.e2e.test_web_groups import is_member, until
from tests.e2e.test_web_link import screen_problems
from tests.e2e.test_web_link_approve import key_check
from tests.e2e.test_web_settings import open_contact_info
from tests.integration.server import ServerProcess

CAMERA_OFF = """() => {
  const video = document.querySelector("video.scan");
  return video !== null && video.hidden && video.srcObject === null;
}"""


@contextlib.asynccontextmanager
async def camera_browser(
    playwright: Playwright, camera: Path
) -> AsyncIterator[tuple[Browser, BrowserContext]]:
    """Chromium whose fake camera films `camera` (a y4m file), and a context allowed to use it."""
    browser = await chromium.launch(playwright, camera_args(camera))
    try:
        yield browser, await axe_context(browser, permissions=["camera"])
    finally:
        await browser.close()


async def decoder_chunks(page: Page) -> list[str]:
    """The scripts of jsQR's lazy chunk the page has fetched."""
    names: list[str] = await page.evaluate(
        "performance.getEntriesByType('resource').map((e) => e.name)"
    )
    return [n for n in names if "/assets/qr_decode-" in n]


async def test_the_browser_scans_a_terminal_link_code_and_links_the_terminal(
    playwright: Playwright, web_server: ServerProcess, tmp_path: Path
) -> None:
    shown: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    linking = asyncio.create_task(
        Client.link(
            web_server.url, tmp_path / "terminal", name="terminal", show_uri=shown.set_result
        )
    )
    uri = await asyncio.wait_for(shown, 10)
    camera = write_y4m(tmp_path / "link.y4m", uri)
    try:
        async with camera_browser(playwright, camera) as (_, context), watched(context) as page:
            await register_in_browser(page, web_server, "alice")
            await page.get_by_role("button", name="Devices").click()
            assert await decoder_chunks(page) == []  # not fetched before the camera is opened
            assert await page.evaluate("'BarcodeDetector' in window") is False
            await page.get_by_role("button", name="Scan QR code").click()

            confirm = page.get_by_role("group", name="Link a new device “terminal”?")
            await expect(confirm).to_be_visible()
            await expect(
                page.get_by_label("Link address of the new device", exact=True)
            ).to_have_value(uri)
            await expect(confirm.locator(".key-check")).to_have_text(key_check(uri))
            assert len(await decoder_chunks(page)) == 1  # jsQR read it
            assert await page.evaluate(CAMERA_OFF)  # found: the camera's track is stopped
            await expect(page.get_by_role("button", name="Scan QR code")).to_be_visible()
            assert not linking.done()

            await confirm.get_by_role("button", name="Link this device").click()
            await expect(page.locator(".link-new [role=status]")).to_have_text(
                "Sent your account's keys to “terminal”; it finishes linking by itself."
            )
            config = await asyncio.wait_for(linking, 30)
            assert (config.account_id, config.device_id) == (
                await page.evaluate("window.porch.profile.config.accountId"),
                2,
            )
            await expect(page.locator("li.device")).to_have_count(2)
            await expect(page.locator("li.device").nth(1)).to_contain_text("terminal")
    finally:
        linking.cancel()


async def test_a_code_that_is_no_link_address_and_a_refused_camera_get_sentences(
    playwright: Playwright, web_server: ServerProcess, tmp_path: Path
) -> None:
    camera = write_y4m(tmp_path / "menu.y4m", "https://example.org/menu")
    async with camera_browser(playwright, camera) as (browser, context):
        async with watched(context) as page:
            await register_in_browser(page, web_server, "bea")
            await page.get_by_role("button", name="Devices").click()
            await page.get_by_role("button", name="Scan QR code").click()
            await expect(page.locator(".link-new [role=alert]")).to_have_text(
                "That QR code is not a link address; point the camera at the QR code the new "
                "device shows."
            )
            # Still looking (the person may turn to the right code), and the camera state
            # passes axe in both schemes, on a desktop and a phone.
            await expect(page.locator(".link-new [role=status]")).to_have_text(
                "Point the camera at the new device's QR code."
            )
            await expect(page.get_by_label("Camera view for scanning the QR code")).to_be_visible()
            assert await screen_problems(page, "devices-scanning") == []
            await expect(page.locator(".link-confirm")).to_be_empty()
            await page.get_by_role("button", name="Stop camera").click()
            await expect(page.locator(".link-new [role=status]")).to_have_text("The camera is off.")
            assert await page.evaluate(CAMERA_OFF)

            # Leaving the screen while it looks turns the camera off as well.
            await page.get_by_role("button", name="Scan QR code").click()
            await expect(page.get_by_label("Camera view for scanning the QR code")).to_be_visible()
            live = "() => document.querySelector('video.scan').srcObject.getVideoTracks()[0]"
            await page.evaluate(f"window.__scanTrack = ({live})()")
            await page.get_by_role("button", name="← Chats").click()
            await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
            await page.wait_for_function("() => window.__scanTrack.readyState === 'ended'")

        # A person who said no to the camera (no permission in this context).
        refused = await axe_context(browser)
        async with watched(refused) as page:
            await register_in_browser(page, web_server, "cleo")
            await page.get_by_role("button", name="Devices").click()
            await page.get_by_role("button", name="Scan QR code").click()
            await expect(page.locator(".link-new [role=alert]")).to_have_text(
                "The camera was not allowed; allow it for this site in the browser's settings "
                "and scan again, or paste the link address instead."
            )
            await expect(page.get_by_role("button", name="Scan QR code")).to_be_visible()
            assert await page.evaluate(CAMERA_OFF)


async def test_a_browser_without_a_camera_says_so(
    browser: Browser, web_server: ServerProcess
) -> None:
    context = await axe_context(browser, permissions=["camera"])  # allowed, but there is none
    async with watched(context) as page:
        await register_in_browser(page, web_server, "dina")
        await page.get_by_role("button", name="Devices").click()
        await page.get_by_role("button", name="Scan QR code").click()
        await expect(page.locator(".link-new [role=alert]")).to_have_text(
            "No camera was found; paste the link address instead."
        )


async def test_join_by_link_scans_the_invite_code(
    playwright: Playwright,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    async with bob:
        info = await bob.groups.create("Choir", [])
        link = await bob.groups.invite(info.id)
        camera = write_y4m(tmp_path / "invite.y4m", link)
        async with camera_browser(playwright, camera) as (_, context), watched(context) as page:
            await register_in_browser(page, web_server, "erin")
            await page.get_by_role("button", name="New group").click()
            await page.get_by_role("button", name="Scan QR code").click()
            await expect(page.locator(".group-join [role=status]")).to_have_text(
                "Read the invite link; press Join to join the group."
            )
            await expect(page.get_by_label("Invite link", exact=True)).to_have_value(link)
            join = page.get_by_role("button", name="Join", exact=True)
            await expect(join).to_be_focused()
            assert await page.evaluate(CAMERA_OFF)
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Choir")).to_be_visible()
            erin = await bob.resolve("@erin")
            await until(lambda: is_member(bob, info.id, erin), "erin to be a member")


async def test_the_contact_screen_scans_their_safety_number_code_and_compares_it(
    playwright: Playwright,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    # The code depends on the browser's keys, made after the launch: the camera's file is
    # written again before each scan (Chromium opens it when the camera starts).
    camera = write_y4m(tmp_path / "safety.y4m", "https://example.org/menu")
    async with camera_browser(playwright, camera) as (_, context), bob, watched(context) as page:
        await register_in_browser(page, web_server, "fern")
        await open_chat(page, "@bob")
        await send_in_browser(page, "hello bob")
        assert (await next_message(bob)).text == "hello bob"
        await open_contact_info(page, "@bob")
        code = (await bob.identity("@fern")).safety_number.qr_payload()

        # A code that is no safety number: a sentence, and the camera keeps looking.
        await page.get_by_role("button", name="Scan QR code").click()
        await expect(page.locator(".contact .error").first).to_have_text(
            "That QR code is not a safety number code; point the camera at the QR code on "
            "@bob's contact screen."
        )
        await page.get_by_role("button", name="Stop camera").click()
        assert await page.evaluate(CAMERA_OFF)

        # Bob's code with one byte changed: read exactly (binary), compared, refused.
        wrong = code[:50] + bytes([code[50] ^ 1]) + code[51:]
        write_y4m(camera, wrong)
        await page.get_by_role("button", name="Scan QR code").click()
        field = page.get_by_label("Their code (hex, from porch verify --json)")
        await expect(field).to_have_value(wrong.hex())
        await expect(page.locator(".contact .error").first).to_contain_text("does not match")
        await expect(page.locator(".verification")).to_have_text("Not verified.")

        write_y4m(camera, code)
        await page.get_by_role("button", name="Scan QR code").click()
        await expect(page.locator(".verification")).to_have_text(
            "The codes match: marked @bob verified."
        )
        assert await page.evaluate(CAMERA_OFF)
