"""The browser's attachments on the S3 media backend, against a real SeaweedFS
(tests/integration/seaweed.py) and a real `porch serve`: the browser PUTs each part straight to
the object store's presigned URL on another origin and reads its ETag, which takes the
bucket's CORS rule (docs/deploy.md, "The S3 bucket's CORS rule") and the page's CSP
connect-src naming the store's origin (src/porch/server/web.py). A photo and a file of several
parts go from the browser to a Python SDK user, a photo from Python shows in the browser, and
a bucket whose CORS rule hides ETag gives the sentence from web/src/net/media.ts, quickly.
Without the `weed` binary these skip locally with the install hint and fail under CI=true."""

# ruff: noqa: F811 (the seaweed fixture imported from seaweed.py is a parameter here)

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, Request, expect

from porch.client import Client
from tests.e2e import browser as chromium
from tests.e2e.pages import axe_context, next_message, open_chat, register_in_browser, watched
from tests.e2e.test_web_media import GPS_IFD, SECRET, attach, find, gps_jpeg, until
from tests.e2e.test_web_screens import check
from tests.integration.seaweed import Seaweed, seaweed  # noqa: F401 (fixture)
from tests.integration.server import ServerProcess

PART = 5 << 20  # S3's smallest part (but the last), PORCH_MEDIA_PART_BYTES in these tests
FULL_RULE: dict[str, Any] = {
    "AllowedMethods": ["PUT", "GET"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3600,
}
NO_ETAG_RULE = {k: v for k, v in FULL_RULE.items() if k != "ExposeHeaders"}
ETAG_HIDDEN = (
    "The media storage did not let the browser read the ETag of an uploaded part, so the "
    "upload cannot finish; nothing was sent; ask the server's operator to expose ETag in the "
    "media bucket's CORS rule."
)


@pytest.fixture
def cors_rule() -> dict[str, Any]:
    """The bucket's one CORS rule, without AllowedOrigins (the server's own URL is added)."""
    return FULL_RULE


@pytest.fixture
def bucket() -> str:
    return f"porch-web-{secrets.token_hex(4)}"


@pytest.fixture
def web_server(
    tmp_path: Path, web_dist: Path, seaweed: Seaweed, bucket: str, cors_rule: dict[str, Any]
) -> Iterator[ServerProcess]:
    """`porch serve` on the S3 backend serving the app (overrides the conftest's, so
    register_client's SDK users are on it too). The bucket and its CORS rule, for exactly the
    app's origin, exist before the server starts, as an operator would set them."""
    srv = ServerProcess(
        tmp_path / "server-data",
        env={
            **seaweed.env(bucket),
            "PORCH_MEDIA_PART_BYTES": str(PART),
            "PORCH_WEB_DIR": str(web_dist),
        },
    )
    s3 = seaweed.client()
    s3.create_bucket(Bucket=bucket)
    rule = {**cors_rule, "AllowedOrigins": [srv.url]}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    srv.start()
    yield srv
    srv.stop()


def store_traffic(page: Page, seaweed: Seaweed) -> list[tuple[str, str]]:
    """(method, URL) of every request the page makes to the object store."""
    seen: list[tuple[str, str]] = []

    def record(request: Request) -> None:
        if request.url.startswith(f"{seaweed.endpoint}/"):
            seen.append((request.method, request.url))

    page.on("request", record)
    return seen


def part_numbers(traffic: list[tuple[str, str]], media_id: str) -> list[int]:
    return sorted(
        int(parse_qs(urlsplit(url).query)["partNumber"][0])
        for method, url in traffic
        if method == "PUT" and f"/{media_id}?" in url
    )


async def test_the_page_policy_names_the_store_and_the_server_finds_the_rule_good(
    browser: Browser, web_server: ServerProcess, seaweed: Seaweed, bucket: str
) -> None:
    context = await browser.new_context()
    async with watched(context) as page:
        response = await page.goto(web_server.url)
        assert response is not None
        policy = await response.header_value("content-security-policy")
        assert policy is not None
        [connect] = [d for d in policy.split("; ") if d.startswith("connect-src ")]
        # 'self', the WebSocket origin, and the store: nothing else.
        assert connect.split()[1:] == [
            "'self'",
            f"ws://127.0.0.1:{web_server.port}",
            seaweed.endpoint,
        ]
    await context.close()
    # The server read the rule at start and found nothing to say about it.
    log = web_server.log_path.read_text(errors="replace")
    assert "CORS" not in log, log[-2000:]


async def test_a_browser_photo_and_a_file_of_three_parts_reach_python_through_the_bucket(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    seaweed: Seaweed,
    bucket: str,
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    async with bob, watched(context) as page:
        traffic = store_traffic(page, seaweed)
        await register_in_browser(page, web_server, "alice")
        alice = await bob.resolve("@alice")
        await open_chat(page, "@bob")

        # A photo with EXIF GPS: stripped in the browser, PUT to the bucket, fetched by Bob.
        original = gps_jpeg()
        assert SECRET in original and b"Exif" in original
        await attach(page, "IMG_0002.jpg", "image/jpeg", original)
        got = await next_message(bob)
        assert got.sender == alice
        [pointer] = got.attachments
        assert pointer.content_type == "image/jpeg" and (pointer.width, pointer.height) == (
            200,
            300,
        )
        assert part_numbers(traffic, pointer.id) == [1]
        assert pointer.id in seaweed.objects(bucket)
        saved = await bob.download(pointer, peer=alice, client_id=got.id, dest_dir=tmp_path)
        raw = saved.read_bytes()
        assert SECRET not in raw and b"Exif" not in raw and b"PhoneMaker" not in raw
        with Image.open(saved) as photo:
            assert photo.format == "JPEG" and photo.size == (200, 300)
            assert dict(photo.getexif()) == {}
            assert photo.getexif().get_ifd(GPS_IFD) == {}
            r, _, b = photo.convert("RGB").getpixel((100, 40))  # type: ignore[misc]
            assert b > 150 and r < 100  # upright: the blue half is on top

        # A file bigger than two parts: three PUTs, one per presigned part URL.
        data = os.urandom(2 * PART + 700_000)
        await attach(page, "archive.bin", "application/octet-stream", data)
        got = await next_message(bob, timeout=60)
        [pointer] = got.attachments
        assert (pointer.name, pointer.size) == ("archive.bin", len(data))
        assert part_numbers(traffic, pointer.id) == [1, 2, 3]
        saved = await bob.download(pointer, peer=alice, client_id=got.id, dest_dir=tmp_path / "f")
        assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()

        # Every blob byte went to the store, none through Porch's own part route.
        assert all(url.startswith(f"{seaweed.endpoint}/{bucket}/") for _, url in traffic)
        await expect(page.locator("li.message.out figure.attachment")).to_have_count(2)
        await expect(page.locator(".compose-error")).to_have_text("")


async def test_a_python_photo_shows_in_the_browser_from_the_bucket(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    seaweed: Seaweed,
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    context = await axe_context(browser)
    async with bob, watched(context) as page:
        traffic = store_traffic(page, seaweed)
        await register_in_browser(page, web_server, "carol")
        carol = await bob.resolve("@carol")
        await open_chat(page, "@bob")
        png = tmp_path / "tiles.png"
        picture = Image.new("RGB", (64, 48), (250, 200, 0))
        for x in range(32, 64):
            for y in range(48):
                picture.putpixel((x, y), (0, 128, 255))
        picture.save(png)
        sent = await bob.send_file(carol, png, caption="tiles")
        bubble = page.locator(f'li.message.in[data-id="{sent.id}"]')
        await expect(bubble.locator("img.thumbnail")).to_be_visible()
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
        # The full photo came from the bucket by its presigned GET URL.
        mine = find(bob, carol, sent.id)
        assert mine is not None
        media_id = mine.attachments[0].id
        assert [m for m, url in traffic if f"/{media_id}?" in url] == ["GET"]
        assert await check(page, "chat-s3-photo") == []


@pytest.mark.parametrize("cors_rule", [NO_ETAG_RULE])
async def test_a_bucket_rule_that_hides_etag_gives_a_sentence_not_a_hang(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    seaweed: Seaweed,
    bucket: str,
) -> None:
    # The server said so at start, in a sentence an operator can act on.
    log = web_server.log_path.read_text(errors="replace")
    assert f"The S3 bucket {bucket}'s CORS rule for PUT does not expose the ETag header" in log
    assert "Traceback" not in log
    bob = await register_client(username="bob")
    context = await axe_context(browser)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    seen = await chromium.watch(page)
    async with bob:
        traffic = store_traffic(page, seaweed)
        deletes: list[str] = []
        page.on(
            "request",
            lambda r: (
                deletes.append(r.url) if r.method == "DELETE" and "/uploads/" in r.url else None
            ),
        )
        await register_in_browser(page, web_server, "dana")
        dana = await bob.resolve("@dana")
        await open_chat(page, "@bob")
        picture = io.BytesIO()
        Image.new("RGB", (40, 30), (10, 160, 90)).save(picture, format="PNG")
        await attach(page, "hidden.png", "image/png", picture.getvalue())
        # The store took the part, but its answer hid the ETag: no retries, one sentence.
        error = page.locator(".compose-error")
        await expect(error).to_have_text(ETAG_HIDDEN, timeout=15_000)
        assert [m for m, _ in traffic if m == "PUT"] == ["PUT"]
        await until(lambda: deletes, "the abandoned slot's DELETE")
        await expect(page.locator("li.message.out figure.attachment")).to_have_count(0)
        assert await check(page, "chat-s3-etag-hidden") == []
        assert all(not m.attachments for m in bob.history(dana))  # nothing reached Bob
    # Chromium's own note of the hidden header is the one console error; nothing else.
    assert seen.problems() == ['console: Refused to get unsafe header "ETag"']
    await context.close()
