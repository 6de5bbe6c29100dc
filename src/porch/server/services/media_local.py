"""The filesystem backend's own routes (spec §6): part PUTs and blob GETs on Porch itself.

No device credentials: the signed URL is the capability (media/signing.py). Checked in this
order, so that nothing about a slot is told to a caller without a valid URL: the URL's
signature and expiry (403 media_url_invalid), the slot (404 media_not_found; 409
media_upload_done once complete), then the body's length against the part's. The path that
is signed is rebuilt from the validated id and number, never taken from the request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.clock import Clock
from porch.server.media.base import (
    BlobFile,
    BlobMissing,
    LocalBlobStore,
    PartTooLong,
    PartTooShort,
    StorageFull,
)
from porch.server.media.filesystem import blob_path, part_path
from porch.server.media.layout import MAX_PARTS, part_count, part_span, valid_media_id
from porch.server.media.signing import UrlSigner
from porch.server.services.media import MediaService, not_found, upload_done
from porch.server.services.media_guard import PutCounter, idle_limited
from porch.server.store.media_records import MediaStore

log = logging.getLogger("porch.media")


def url_invalid() -> ProtocolError:
    return ProtocolError(
        ErrorCode.MEDIA_URL_INVALID,
        "this upload or download link is invalid or has expired; ask the server for a new one",
    )


class LocalMedia:
    def __init__(
        self,
        media: MediaService,
        store: MediaStore,
        blobs: LocalBlobStore,
        signer: UrlSigner,
        clock: Clock,
        *,
        idle_seconds: float,
        puts: PutCounter,
    ) -> None:
        self._media = media
        self._store = store
        self._blobs = blobs
        self._signer = signer
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._puts = puts

    async def _check(self, method: str, path: str, expires: int, sig: str) -> None:
        if not await self._signer.verify(method, path, expires, sig, self._clock.now_ms()):
            raise url_invalid()

    async def receive_part(
        self,
        media_id: str,
        n: int,
        expires: int,
        sig: str,
        content_length: int | None,
        chunks: AsyncIterator[bytes],
    ) -> str:
        """Store part n from chunks; its ETag. The body is refused before any byte of it is
        written if Content-Length is absent or not the part's length, and a body running past
        it stops before the first byte past the part."""
        if not valid_media_id(media_id) or not 1 <= n <= MAX_PARTS:
            raise url_invalid()
        await self._check("PUT", part_path(media_id, n), expires, sig)
        record = await self._store.get_media(media_id)
        if record is None or record.expires <= self._clock.now_ms():
            raise not_found()
        if record.complete:
            raise upload_done()
        if n > part_count(record.size, record.part_size):
            raise url_invalid()
        offset, length = part_span(record.size, record.part_size, n)
        if content_length is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "a part upload needs a Content-Length header", length=length
            )
        if content_length > length:
            raise _too_long(n, length)
        if content_length < length:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"part {n} is {length} bytes; the body declared {content_length}",
                length=length,
            )
        with self._puts.hold(media_id, record.account_id):
            return await self._write(media_id, n, offset, length, chunks)

    async def _write(
        self, media_id: str, n: int, offset: int, length: int, chunks: AsyncIterator[bytes]
    ) -> str:
        body = idle_limited(chunks, self._idle_seconds)
        try:
            return await self._blobs.write_part(media_id, n, offset, length, body)
        except PartTooLong:
            raise _too_long(n, length) from None
        except PartTooShort:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"part {n} ended before its {length} bytes; send it again",
                length=length,
            ) from None
        except BlobMissing:
            raise not_found() from None
        except StorageFull:
            log.error("the media directory is full; a part upload was refused")
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                "the server has no room for this part now; try again later",
                retry_after=60,
            ) from None

    async def open_blob(self, media_id: str, expires: int, sig: str) -> BlobFile:
        if not valid_media_id(media_id):
            raise url_invalid()
        await self._check("GET", blob_path(media_id), expires, sig)
        await self._media.live_blob(media_id)
        try:
            return self._blobs.open_blob(media_id)
        except BlobMissing:
            raise not_found() from None


def _too_long(n: int, length: int) -> ProtocolError:
    return ProtocolError(
        ErrorCode.REQUEST_TOO_LARGE, f"part {n} is {length} bytes; the body is longer", limit=length
    )
