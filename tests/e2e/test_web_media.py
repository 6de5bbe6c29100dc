"""Rich messages and attachments between the browser and the Python SDK (issue 9, wmedia):
a photo with EXIF GPS sent from the browser arrives stripped; a photo from Python shows as a
thumbnail and then in full with the same pixels; files go both ways byte for byte; replies,
reactions, edits, deletes and the disappearing timer interoperate both ways; axe-core finds
nothing serious in a chat full of them. Real server on loopback, headless Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import Browser, Page, Route, expect

from porch.client import (
    Client,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    TimerChanged,
)
from porch.client.history import HistoryMessage
from porch.crypto.content import Text
from tests.e2e import browser as chromium
from tests.e2e.pages import (
    axe_context,
    next_message,
    open_chat,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.e2e.test_web_screens import check
from tests.integration.server import ServerProcess

SECRET = b"SECRET-CAMERA-SERIAL-42"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def gps_jpeg(width: int = 300, height: int = 200) -> bytes:
    """A JPEG with EXIF GPS, a camera serial in "Software" and orientation 6 (turn 90°)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    for x in range(width // 2):
        for y in range(height):
            image.putpixel((x, y), (20, 40, 220))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0131] = SECRET.decode()
    exif[GPS_IFD] = {1: "N", 2: (37.0, 25.0, 19.2), 3: "W", 4: (122.0, 5.0, 3.1)}
    exif[ORIENTATION] = 6
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


async def until(check_fn: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check_fn()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def next_of(client: Client, kind: type, by: str | None = None, timeout: float = 20) -> Any:
    """The next event of ``kind`` that ``by`` caused (not the client's own echo)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        actor = getattr(event, "reactor", None) or getattr(event, "author", None)
        actor = actor or getattr(event, "by", None)
        if isinstance(event, kind) and (by is None or actor == by):
            return event
    raise AssertionError(f"no {kind.__name__} arrived")


def find(client: Client, peer: str, client_id: str) -> HistoryMessage | None:
    return next((m for m in client.history(peer) if m.client_id == client_id), None)


def reactions(client: Client, peer: str, client_id: str) -> tuple[tuple[str, str], ...]:
    found = find(client, peer, client_id)
    return () if found is None else found.reactions


async def attach(page: Page, name: str, mime: str, data: bytes) -> None:
    await page.locator("#attach").set_input_files({"name": name, "mimeType": mime, "buffer": data})


async def test_a_browser_photo_arrives_at_python_without_exif_or_gps(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        alice = await bob.resolve("@alice")
        await open_chat(page, "@bob")
        original = gps_jpeg()
        assert SECRET in original and b"Exif" in original  # the test photo does carry them
        await page.get_by_label("Message", exact=True).fill("our spot")
        await attach(page, "IMG_0001.jpg", "image/jpeg", original)

        got = await next_message(bob)
        assert (got.sender, got.text) == (alice, "our spot")
        [pointer] = got.attachments
        assert pointer.content_type == "image/jpeg" and pointer.name == "IMG_0001.jpg"
        # The orientation was applied to the pixels: 300x200 turned is 200x300.
        assert (pointer.width, pointer.height) == (200, 300)
        assert pointer.thumbnail is not None and len(pointer.thumbnail) <= 16384
        with Image.open(io.BytesIO(pointer.thumbnail)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 256
        assert pointer.blurhash is not None and 6 <= len(pointer.blurhash) <= 100
        saved = await bob.download(pointer, peer=alice, client_id=got.id, dest_dir=tmp_path)
        raw = saved.read_bytes()
        assert SECRET not in raw and b"Exif" not in raw and b"PhoneMaker" not in raw
        with Image.open(saved) as photo:
            assert photo.format == "JPEG" and photo.size == (200, 300)
            assert dict(photo.getexif()) == {}
            assert photo.getexif().get_ifd(GPS_IFD) == {}
            # Upright: the left half (blue) of the sideways original is now the top half.
            r, _, b = photo.convert("RGB").getpixel((100, 40))  # type: ignore[misc]
            assert b > 150 and r < 100
        # The sender's own bubble shows the photo with its upload done and no error.
        mine = page.locator("li.message.out")
        await expect(mine.locator("figure.attachment.image")).to_have_count(1)
        await expect(mine).to_have_attribute("data-status", "delivered")
        await expect(page.locator(".compose-error")).to_have_text("")


async def test_a_python_photo_shows_as_thumbnail_then_full_and_files_go_both_ways(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context(accept_downloads=True)
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "carol")
        carol = await bob.resolve("@carol")
        await open_chat(page, "@bob")

        # A lossless PNG from Python: the browser must show exactly these pixels.
        png = tmp_path / "tiles.png"
        picture = Image.new("RGB", (64, 48), (250, 200, 0))
        for x in range(32, 64):
            for y in range(48):
                picture.putpixel((x, y), (0, 128, 255))
        picture.save(png)
        sent = await bob.send_file(carol, png, caption="tiles")
        bubble = page.locator(f'li.message.in[data-id="{sent.id}"]')
        thumb = bubble.locator("img.thumbnail")
        await expect(thumb).to_be_visible()  # from the pointer, before any download
        first = find(bob, carol, sent.id)
        assert first is not None
        # A pointer without a thumbnail shows its blurhash until it is opened.
        bare = replace(first.attachments[0], thumbnail=None)
        text = Text(secrets.token_urlsafe(12), "", int(time.time() * 1000), attachments=(bare,))
        await bob.send_content(carol, text)
        bare_bubble = page.locator(f'li.message.in[data-id="{text.id}"]')
        await expect(bare_bubble.locator("canvas.blurhash")).to_be_visible()

        await bubble.get_by_role("button", name="Open photo tiles.png").click()
        full = bubble.locator("img.full")
        await expect(full).to_be_visible()
        pixels = await full.evaluate(
            """async (img) => {
                await img.decode();
                const c = document.createElement("canvas");
                c.width = img.naturalWidth; c.height = img.naturalHeight;
                const ctx = c.getContext("2d");
                ctx.drawImage(img, 0, 0);
                const at = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
                return { w: c.width, h: c.height, left: at(5, 5), right: at(60, 40) };
            }"""
        )
        assert pixels == {"w": 64, "h": 48, "left": [250, 200, 0], "right": [0, 128, 255]}
        # Saving it gives the very bytes Bob's client uploaded (its own copy, downloaded).
        mine = find(bob, carol, sent.id)
        assert mine is not None
        uploaded = await bob.download(mine.attachments[0], peer=carol, client_id=sent.id)
        async with page.expect_download() as saving:
            await bubble.get_by_role("button", name="Save tiles.png").click()
        download = await saving.value
        assert download.suggested_filename == "tiles.png"
        assert Path(await download.path()).read_bytes() == uploaded.read_bytes()

        # A file from Python: offered for saving, byte for byte.
        report = tmp_path / "report.bin"
        report.write_bytes(bytes(range(256)) * 700)
        sent = await bob.send_file(carol, report)
        file_bubble = page.locator(f'li.message.in[data-id="{sent.id}"]')
        async with page.expect_download() as saving:
            await file_bubble.get_by_role("button", name="Download report.bin (179.2 kB)").click()
        download = await saving.value
        assert download.suggested_filename == "report.bin"
        assert Path(await download.path()).read_bytes() == report.read_bytes()

        # A file from the browser, dropped onto the chat: Bob's client downloads, verifies and
        # decrypts it.
        notes = ("shopping: eggs, flour, 🍓\n" * 400).encode()
        await page.locator("section.chat").evaluate(
            """(chat, text) => {
                const data = new DataTransfer();
                data.items.add(new File([text], "notes.txt", { type: "text/plain" }));
                const init = { dataTransfer: data, bubbles: true };
                chat.dispatchEvent(new DragEvent("dragover", init));
                chat.dispatchEvent(new DragEvent("drop", init));
            }""",
            notes.decode(),
        )
        got = await next_message(bob)
        [pointer] = got.attachments
        assert (pointer.name, pointer.content_type, pointer.size) == (
            "notes.txt",
            "text/plain",
            len(notes),
        )
        saved = await bob.download(pointer, peer=carol, client_id=got.id, dest_dir=tmp_path / "in")
        assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(notes).digest()

        # A file pasted into the composer goes the same way, with the typed caption.
        await page.get_by_label("Message", exact=True).fill("pasted")
        await page.get_by_label("Message", exact=True).evaluate(
            """(box) => {
                const data = new DataTransfer();
                data.items.add(new File(["clip board"], "clip.txt", { type: "text/plain" }));
                const init = { clipboardData: data, bubbles: true };
                box.dispatchEvent(new ClipboardEvent("paste", init));
            }"""
        )
        got = await next_message(bob)
        assert got.text == "pasted" and [a.name for a in got.attachments] == ["clip.txt"]


async def open_menu(page: Page, client_id: str) -> Any:
    bubble = page.locator(f'li.message[data-id="{client_id}"]')
    await bubble.get_by_role("button", name="Message actions").click()
    return bubble


async def test_replies_reactions_edits_deletes_and_timer_both_ways(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await axe_context(browser)
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "dana")
        dana = await bob.resolve("@dana")
        await open_chat(page, "@bob")

        # Python -> browser, then a reply from the browser quoting it.
        lunch = await bob.send_text(dana, "lunch?")
        await expect(page.locator(f'li[data-id="{lunch.id}"] .body')).to_have_text("lunch?")
        bubble = await open_menu(page, lunch.id)
        await bubble.get_by_role("button", name="Reply").click()
        await expect(page.locator(".compose-mode")).to_contain_text("Replying to @bob: lunch?")
        await send_in_browser(page, "yes, at noon")
        reply = await next_message(bob)
        assert reply.text == "yes, at noon"
        assert reply.reply is not None
        assert (reply.reply.id, reply.reply.author) == (lunch.id, bob.account_id)
        mine = page.locator(f'li[data-id="{reply.id}"]')
        await expect(mine.locator(".quote")).to_have_text("@bob: lunch?")

        # Reactions both ways; the browser removes its own again.
        bubble = await open_menu(page, lunch.id)
        await bubble.get_by_role("button", name="React with 👍").click()
        changed = await next_of(bob, ReactionChanged, dana)
        assert (changed.id, changed.reactor, changed.emoji) == (lunch.id, dana, "👍")
        await until(lambda: reactions(bob, dana, lunch.id) == ((dana, "👍"),), "the reaction")
        await expect(bubble.locator(".reactions li")).to_have_text(["👍"])
        await bob.react(dana, reply.id, "❤️")
        await expect(mine.locator(".reactions li")).to_have_text(["❤️"])
        bubble = await open_menu(page, lunch.id)
        await bubble.get_by_role("button", name="Remove reaction 👍").click()
        changed = await next_of(bob, ReactionChanged, dana)
        assert changed.emoji == ""
        await expect(bubble.locator(".reactions")).to_have_count(0)

        # A reply from Python quoting the browser's message.
        answer = await bob.reply(dana, reply.id, "great")
        quoted = page.locator(f'li[data-id="{answer.id}"] .quote')
        await expect(quoted).to_have_text("You: yes, at noon")

        # Edits both ways.
        await open_menu(page, reply.id)
        await mine.get_by_role("button", name="Edit").click()
        await expect(page.locator(".compose-mode")).to_contain_text("Editing your message")
        await page.get_by_label("Message", exact=True).fill("yes, at half past twelve")
        await page.keyboard.press("Enter")
        edited = await next_of(bob, MessageEdited, dana)
        assert (edited.id, edited.text) == (reply.id, "yes, at half past twelve")
        await expect(mine.locator(".body")).to_have_text("yes, at half past twelve")
        await expect(mine.locator(".edited")).to_be_visible()
        theirs = find(bob, dana, reply.id)
        assert theirs is not None and theirs.edited and theirs.text == "yes, at half past twelve"
        await bob.edit(dana, lunch.id, "lunch at one?")
        lunch_bubble = page.locator(f'li[data-id="{lunch.id}"]')
        await expect(lunch_bubble.locator(".body")).to_have_text("lunch at one?")
        await expect(lunch_bubble).to_have_attribute("data-edited", "true")
        # The quote shows the original's own text as this device holds it now.
        await expect(mine.locator(".quote")).to_have_text("@bob: lunch at one?")

        # axe-core on a chat with quotes, reactions, edits and an open actions menu.
        await bob.react(dana, reply.id, "😂")
        await open_menu(page, lunch.id)
        assert await check(page, "chat-rich") == []
        await page.set_viewport_size({"width": 360, "height": 740})
        assert await check(page, "chat-rich-phone") == []
        await page.set_viewport_size({"width": 1280, "height": 800})

        # Deletes both ways.
        await open_menu(page, reply.id)
        await mine.get_by_role("button", name="Delete for everyone").click()
        deleted = await next_of(bob, MessageDeleted, dana)
        assert deleted.id == reply.id
        await expect(mine.locator(".body")).to_have_text("This message was deleted")
        await expect(mine.locator(".reactions")).to_have_count(0)
        theirs = find(bob, dana, reply.id)
        assert theirs is not None and theirs.deleted and theirs.text == ""
        await bob.delete(dana, lunch.id)
        await expect(lunch_bubble).to_have_attribute("data-deleted", "true")
        await expect(lunch_bubble.locator(".body")).to_have_text("This message was deleted")

        # The disappearing timer: set in the browser, applied by Python; set by Python (2 s),
        # its next text disappears from the screen and from IndexedDB.
        await page.get_by_label("Disappearing messages").select_option("300")
        timer = await next_of(bob, TimerChanged, dana)
        assert timer.seconds == 300 and bob.timer_of(dana) == 300
        await expect(page.locator("li.message.notice .body").last).to_have_text(
            "You set disappearing messages to 5 minutes"
        )
        await send_in_browser(page, "this one goes in 5 minutes")
        got = await next_message(bob)
        assert got.expires_at is not None and abs(got.expires_at - got.ts - 300_000) < 1000
        await bob.set_timer(dana, 2)
        await expect(page.get_by_label("Disappearing messages")).to_have_value("2")
        poof = await bob.send_text(dana, "poof")
        gone = page.locator(f'li[data-id="{poof.id}"]')
        await expect(gone.locator(".expires")).to_be_visible()
        await expect(gone).to_have_count(0, timeout=10_000)
        keys = await page.evaluate(
            """() => new Promise((resolve, reject) => {
                const open = indexedDB.open("porch");
                open.onsuccess = () => {
                    const store = open.result.transaction("messages").objectStore("messages");
                    const req = store.getAllKeys();
                    req.onsuccess = () => { open.result.close(); resolve(req.result); };
                    req.onerror = () => reject(req.error);
                };
            })"""
        )
        assert not any(str(k).endswith(f"|{poof.id}") for k in keys)
        assert any(str(k).endswith(f"|{answer.id}") for k in keys)  # the rest stays


async def test_an_upload_resumes_after_a_dropped_part_and_gives_up_with_a_sentence(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    context.set_default_timeout(20_000)
    page = await context.new_page()
    seen = await chromium.watch(page)
    failures = {"left": 1, "status": 0}
    deletes: list[str] = []

    async def flaky(route: Route) -> None:
        if failures["status"]:
            await route.fulfill(status=failures["status"], body="")
        elif failures["left"] > 0:
            failures["left"] -= 1
            await route.abort("connectionreset")
        else:
            await route.continue_()

    page.on(
        "request",
        lambda r: deletes.append(r.url) if r.method == "DELETE" and "/uploads/" in r.url else None,
    )
    async with bob:
        await register_in_browser(page, web_server, "erin")
        await open_chat(page, "@bob")
        await page.route("**/v1/media/parts/**", flaky)
        # The first PUT drops: the server is asked what it holds and the part goes again.
        data = bytes(range(256)) * 64
        await attach(page, "resumed.bin", "application/octet-stream", data)
        got = await next_message(bob)
        [pointer] = got.attachments
        saved = await bob.download(pointer, peer=got.sender, client_id=got.id)
        assert saved.read_bytes() == data and failures["left"] == 0
        # A part that keeps failing: after six attempts a sentence, nothing sent, slot freed.
        failures["status"] = 503
        await attach(page, "doomed.bin", "application/octet-stream", data)
        error = page.locator(".compose-error")
        await expect(error).to_have_text(
            "The upload failed 6 times (HTTP 503); nothing was sent; check the connection and "
            "send the file again.",
            timeout=30_000,
        )
        await until(lambda: deletes, "the abandoned slot's DELETE")
        assert await page.locator("li.message.out figure.attachment").count() == 1
        assert all(
            m.attachments[0].name != "doomed.bin" for m in bob.history(got.sender) if m.attachments
        )
    # The forced failures show as failed loads; nothing else may.
    assert [p for p in seen.problems() if "Failed to load resource" not in p] == []
    await context.close()
