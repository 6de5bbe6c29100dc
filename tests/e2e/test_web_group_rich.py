"""Rich messages and photos in a group between the browser and Python SDK members (issue 9):
a reply, reactions from several members, an edit, a delete and a photo both ways, and a file
from Python, inside the group's Megolm session (the attachment key travels in the encrypted
text, as Python sends it); another member's message offers no edit and Python refuses one;
axe-core on the group chat; a reload keeps it all. Real server on loopback, headless
Chromium."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Browser, expect

from porch.client import Client, MessageDeleted, MessageEdited, ReactionChanged
from porch.client.errors import UsageError
from tests.e2e.pages import axe_context, register_in_browser, send_in_browser, watched
from tests.e2e.test_web_groups import group_message
from tests.e2e.test_web_media import SECRET, attach, gps_jpeg, next_of, open_menu, until
from tests.e2e.test_web_screens import check
from tests.integration.server import ServerProcess


def row(client: Client, peer: str, client_id: str) -> Any:
    return next((m for m in client.history(peer) if m.client_id == client_id), None)


def reactions(client: Client, peer: str, client_id: str) -> list[tuple[str, str]]:
    found = row(client, peer, client_id)
    return [] if found is None else sorted(found.reactions)


async def test_group_rich_messages_and_photos_both_ways_survive_a_reload(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    context = await axe_context(browser, accept_downloads=True)
    async with bob, carol, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        alice = await bob.resolve("@alice")
        info = await bob.groups.create("Crag", [alice, carol.account_id])
        gid, peer = info.id, f"g:{info.id}"
        first = await bob.groups.send(gid, "belay at nine?")
        await page.get_by_role("button", name="Crag").click()
        bobs = page.locator(f'li.message.in[data-id="{first}"]')
        await expect(bobs.locator(".body")).to_have_text("belay at nine?")

        # A reply from the browser quoting Bob: both Python members get the quote.
        await open_menu(page, first)
        await bobs.get_by_role("button", name="Reply").click()
        await expect(page.locator(".compose-mode")).to_contain_text(
            "Replying to @bob: belay at nine?"
        )
        await send_in_browser(page, "yes, at nine")
        reply = await group_message(bob, "yes, at nine")
        assert (reply.sender, reply.group) == (alice, gid)
        assert reply.reply is not None and (reply.reply.id, reply.reply.author) == (
            first,
            bob.account_id,
        )
        assert (await group_message(carol, "yes, at nine")).reply is not None
        mine = page.locator(f'li.message.out[data-id="{reply.id}"]')
        await expect(mine.locator(".quote")).to_have_text("@bob: belay at nine?")

        # Reactions: the browser's and Carol's on Bob's message, each member's own.
        await open_menu(page, first)
        await bobs.get_by_role("button", name="React with 👍").click()
        changed = await next_of(bob, ReactionChanged, alice)
        assert (changed.peer, changed.id, changed.emoji) == (peer, first, "👍")
        await carol.react(peer, first, "👍")
        await until(
            lambda: (
                reactions(bob, peer, first) == sorted([(alice, "👍"), (carol.account_id, "👍")])
            ),
            "bob to hold both reactions",
        )
        both = bobs.locator(".reactions li")
        await expect(both).to_have_text(["👍 2"])
        await expect(both).to_have_attribute("aria-label", "👍 by You, @carol")
        await bob.react(peer, reply.id, "😂")
        await expect(mine.locator(".reactions li")).to_have_attribute("aria-label", "😂 by @bob")

        # A reply from Python quoting the browser's message.
        answer = await bob.reply(peer, reply.id, "great")
        await expect(page.locator(f'li[data-id="{answer.id}"] .quote')).to_have_text(
            "You: yes, at nine"
        )

        # Edits: the browser's own, then Bob's; nobody edits another member's message.
        await open_menu(page, reply.id)
        await mine.get_by_role("button", name="Edit").click()
        await page.get_by_label("Message", exact=True).fill("yes, at half past nine")
        await page.keyboard.press("Enter")
        edited = await next_of(bob, MessageEdited, alice)
        assert (edited.peer, edited.id, edited.text) == (peer, reply.id, "yes, at half past nine")
        await expect(mine.locator(".body")).to_have_text("yes, at half past nine")
        await until(
            lambda: getattr(row(carol, peer, reply.id), "text", "") == "yes, at half past nine",
            "carol to apply the edit",
        )
        await bob.edit(peer, first, "belay at ten?")
        await expect(bobs.locator(".body")).to_have_text("belay at ten?")
        await expect(bobs).to_have_attribute("data-edited", "true")
        await expect(mine.locator(".quote")).to_have_text("@bob: belay at ten?")
        with pytest.raises(UsageError, match="only edit your own"):
            await carol.edit(peer, reply.id, "carol's words")
        await open_menu(page, first)
        await expect(bobs.get_by_role("button", name="Edit")).to_have_count(0)
        await expect(bobs.get_by_role("button", name="Delete for everyone")).to_have_count(0)

        # axe-core on the group chat full of quotes, reactions and edits, menu open.
        problems = await check(page, "group-chat-rich")
        await page.set_viewport_size({"width": 360, "height": 740})
        problems += await check(page, "group-chat-rich-phone")
        await page.set_viewport_size({"width": 1280, "height": 800})

        # Photos both ways: the browser's arrives stripped of EXIF; Bob's shows in full.
        await page.get_by_label("Message", exact=True).fill("the route")
        await attach(page, "IMG_0002.jpg", "image/jpeg", gps_jpeg())
        photo = await group_message(bob, "the route")
        [pointer] = photo.attachments
        assert pointer.content_type == "image/jpeg" and pointer.thumbnail is not None
        saved = await bob.download(pointer, peer=peer, client_id=photo.id, dest_dir=tmp_path)
        raw = saved.read_bytes()
        assert SECRET not in raw and b"Exif" not in raw
        carols = await group_message(carol, "the route")
        again = await carol.download(
            carols.attachments[0], peer=peer, client_id=carols.id, dest_dir=tmp_path / "c"
        )
        assert again.read_bytes() == raw
        # The sender's own bubble shows the photo, the upload done, and delivered: both
        # members' clients sent their receipts (group ticks, core/group_live.ts).
        own_photo = page.locator(f'li.message.out[data-id="{photo.id}"]')
        await expect(own_photo.locator("figure.attachment.image")).to_have_count(1)
        await expect(own_photo).to_have_attribute("data-status", "delivered")
        await expect(page.locator(".compose-error")).to_have_text("")
        png = tmp_path / "topo.png"
        picture = Image.new("RGB", (64, 48), (250, 200, 0))
        for x in range(32, 64):
            for y in range(48):
                picture.putpixel((x, y), (0, 128, 255))
        picture.save(png)
        topo = await bob.send_file(peer, png, caption="topo")
        bubble = page.locator(f'li.message.in[data-id="{topo.id}"]')
        await expect(bubble.locator("img.thumbnail")).to_be_visible()
        await expect(bubble.locator(".author")).to_have_text("@bob")
        await bubble.get_by_role("button", name="Open photo topo.png").click()
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

        # A file from a Python member: offered for saving, byte for byte.
        report = tmp_path / "grades.bin"
        report.write_bytes(bytes(range(256)) * 40)
        sent = await bob.send_file(peer, report)
        file_bubble = page.locator(f'li.message.in[data-id="{sent.id}"]')
        async with page.expect_download() as saving:
            await file_bubble.get_by_role("button", name="Download grades.bin (10.2 kB)").click()
        download = await saving.value
        assert download.suggested_filename == "grades.bin"
        assert Path(await download.path()).read_bytes() == report.read_bytes()

        # Deletes both ways.
        await open_menu(page, reply.id)
        await mine.get_by_role("button", name="Delete for everyone").click()
        deleted = await next_of(bob, MessageDeleted, alice)
        assert (deleted.peer, deleted.id) == (peer, reply.id)
        await expect(mine.locator(".body")).to_have_text("This message was deleted")
        await until(lambda: getattr(row(carol, peer, reply.id), "deleted", False), "carol's delete")
        await bob.delete(peer, answer.id)
        gone = page.locator(f'li[data-id="{answer.id}"]')
        await expect(gone).to_have_attribute("data-deleted", "true")

        # A reload keeps the quote, reactions, edit, deletes and photos (IndexedDB).
        await page.reload()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await page.get_by_role("button", name="Crag").click()
        await expect(bobs.locator(".body")).to_have_text("belay at ten?")
        await expect(bobs).to_have_attribute("data-edited", "true")
        await expect(bobs.locator(".reactions li")).to_have_text(["👍 2"])
        await expect(mine).to_have_attribute("data-deleted", "true")
        await expect(gone.locator(".body")).to_have_text("This message was deleted")
        await expect(bubble.locator("img.thumbnail")).to_be_visible()
        await expect(
            page.locator(f'li[data-id="{photo.id}"] figure.attachment.image')
        ).to_have_count(1)
        assert problems == []
