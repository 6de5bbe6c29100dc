"""Uploading an attachment: slot, parts, retries, completion (spec §6; docs/design.md,
"Attachment transfers").

The blob streams part by part from BlobSource, one chunk in memory at a time, each part's body
an async generator with its exact Content-Length. A dropped connection, a 5xx or an expired
part URL costs one attempt out of MAX_ATTEMPTS: after a pause the server is asked which parts
it holds (GET /v1/media/uploads/{id}), and only the missing ones are sent again, each from its
first byte.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from porch.client.errors import ClientCode, ServerError, ServerUnreachable
from porch.client.media_api import MediaApi, Slot
from porch.client.media_blob import BlobSource
from porch.client.media_http import Attempts, Sleep, failure_of, human_size, resolve_url

Progress = Callable[[int, int], None]
log = logging.getLogger("porch.client.media")
ABANDON_SECONDS = 2.0  # the most a failed or cancelled upload waits to free its slot


@dataclass(frozen=True, slots=True)
class Uploaded:
    media_id: str
    digest: bytes
    blob_bytes: int
    expires: int


class _Retry(Exception):
    """A part failed in a way another attempt may fix (network, 5xx, expired URL)."""


def too_large(exc: ServerError, size: int) -> ServerError:
    """media_too_large in the file's own size: the server measured the blob, a little larger
    (padding, iv and MAC), and words its limit in plaintext bytes (spec §6)."""
    said = re.sub(r"^the file is [^;]*;", f"the file is {human_size(size)};", str(exc))
    return ServerError(exc.code, f"{said}; send a smaller file", exc.status, **exc.details)


async def upload(
    media: MediaApi,
    http: httpx.AsyncClient,
    source: BlobSource,
    *,
    recipients: int | None = None,
    progress: Progress | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Uploaded:
    """Upload the blob of ``source``; returns the media id and the blob's digest."""
    try:
        slot = await media.create_upload(source.total, recipients)
    except ServerError as exc:
        if exc.code == "media_too_large":
            raise too_large(exc, source.size) from None
        raise
    try:
        return await _transfer(media, http, source, slot, progress, sleep)
    except BaseException:
        # A failed or cancelled upload (Ctrl-C) would hold one of the account's pending
        # slots for 24 h (spec §6): give it up, briefly, and raise what happened.
        await _abandon(media, slot.id)
        raise


async def _abandon(media: MediaApi, media_id: str) -> None:
    try:
        async with asyncio.timeout(ABANDON_SECONDS):
            await media.abandon(media_id)
    except Exception as exc:  # unreachable, slow or refusing: the server's sweep frees it
        log.info("could not give up an unfinished upload (%s)", type(exc).__name__)


async def _transfer(
    media: MediaApi,
    http: httpx.AsyncClient,
    source: BlobSource,
    slot: Slot,
    progress: Progress | None,
    sleep: Sleep,
) -> Uploaded:
    count = math.ceil(source.total / slot.part_size)
    if set(slot.urls) != set(range(1, count + 1)):
        raise ServerError(
            ClientCode.BAD_RESPONSE,
            f"the server offered {len(slot.urls)} upload parts for a blob that needs {count}; "
            "check that the server runs a compatible Porch version",
        )
    etags: dict[int, str] = {}
    held: set[int] = set()  # parts the server reported holding, with or without their ETag
    todo = slot.urls
    attempts = Attempts(
        "upload", "nothing was sent; check the connection and send the file again", sleep
    )
    while True:
        try:
            for n in sorted(set(todo) - set(etags)):
                etags[n] = await _put_part(http, media, slot, n, todo[n], source, etags, progress)
            break
        except _Retry as why:
            await attempts.failed(str(why))
        try:
            status = await media.upload_status(slot.id)
        except ServerUnreachable:
            continue  # todo unchanged: the next attempt tries the same parts again
        etags.update(status.etags or {})
        # The server is the authority on what it holds: a part it lacks is sent again even if
        # we saw its 200, one it holds is not sent twice. A part it holds whose 200 we never
        # saw has no ETag here; completion takes it as stored (spec §6, the server's check).
        for n in set(etags) - status.received:
            del etags[n]
        held = set(status.received)
        todo = status.urls
    if len(set(etags) | held) < count:
        raise ServerError(
            ClientCode.BAD_RESPONSE,
            "the server neither holds nor offers URLs for some parts of the upload; "
            "send the file again",
        )
    digest = await asyncio.to_thread(source.digest)
    expires = await media.complete(slot.id, etags)
    return Uploaded(slot.id, digest, source.total, expires)


async def _put_part(
    http: httpx.AsyncClient,
    media: MediaApi,
    slot: Slot,
    n: int,
    url: str,
    source: BlobSource,
    etags: dict[int, str],
    progress: Progress | None,
) -> str:
    start = (n - 1) * slot.part_size
    end = min(start + slot.part_size, source.total)
    done_before = sum(min(slot.part_size, source.total - (k - 1) * slot.part_size) for k in etags)

    async def body() -> AsyncIterator[bytes]:
        pos = start
        while pos < end:
            # File I/O and AES block: off the event loop, one chunk at a time.
            chunk = await asyncio.to_thread(source.read, pos, end)
            pos += len(chunk)
            yield chunk
            if progress is not None:
                progress(done_before + pos - start, source.total)

    try:
        response = await http.put(
            resolve_url(media.base_url, url),
            content=body(),
            headers={"content-length": str(end - start)},
        )
    except httpx.TransportError as exc:
        raise _Retry(type(exc).__name__) from None
    if response.status_code >= 500 or response.status_code in (403, 408, 429):
        # 403: a part URL that expired while earlier parts were sent; the status call
        # hands out fresh ones.
        raise _Retry(f"HTTP {response.status_code}")
    if response.is_error:
        raise failure_of(response, "upload")
    etag = str(response.headers.get("etag", ""))
    if not etag or len(etag) > 200:
        raise ServerError(
            ClientCode.BAD_RESPONSE,
            "the storage server accepted a part without an ETag; check the media backend",
        )
    return etag
