"""Attachment blobs (spec §6): upload slots, parts, completion, download URLs and expiry.

The server holds ciphertext only: a client encrypts an attachment (crypto/attachment.py),
asks for a slot of `size` blob bytes, PUTs its numbered parts to signed URLs, completes the
slot and sends the pointer (id, key, digest) end to end. The rules here: the size limit
(before any byte is stored), a daily byte quota and a cap on unfinished slots per account,
ownership of unfinished slots (another account's id answers exactly like an unknown one,
404 media_not_found, so ids cannot be probed), completion checks, expiry, and counting
downloads per distinct device for the optional early delete. Any authenticated device may
fetch a download URL: the unguessable id and the end-to-end key are the capability.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from porch.crypto.attachment import blob_size
from porch.failures import log_failure
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.clock import Clock
from porch.server.media.base import BlobMissing, BlobStore, PartsMismatch
from porch.server.media.layout import (
    choose_part_size,
    in_units,
    part_count,
    part_span,
)
from porch.server.ratelimit import Limit, RateLimiter
from porch.server.services.accounts import Principal
from porch.server.settings import Settings
from porch.server.store.media_records import (
    UPLOADING,
    MediaQuotaExceeded,
    MediaRecord,
    MediaStore,
    TooManyPendingUploads,
)

log = logging.getLogger("porch.media")

DAY_MS = 86_400_000
SLOT_MS = DAY_MS  # an unfinished slot lives 24 h (spec §6)
SWEEP_BATCH = 100
SWEEP_MAX_BATCHES = 100  # per sweep: a backlog is worked off over the following sweeps
MAX_LISTED = 100  # part numbers named in a media_incomplete error


@dataclass(frozen=True, slots=True)
class PartUrl:
    n: int
    url: str


@dataclass(frozen=True, slots=True)
class UploadSlot:
    id: str
    size: int
    part_size: int
    parts: tuple[PartUrl, ...]  # for POST: every part; for GET: the missing ones
    received: tuple[int, ...]
    expires: int  # when these part URLs stop working (epoch ms)
    slot_expires: int  # when the unfinished slot is swept


@dataclass(frozen=True, slots=True)
class StoredBlob:
    id: str
    size: int
    expires: int


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    url: str
    size: int
    expires: int  # the blob's expiry (the URL's own is in its query)


def new_media_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")


def not_found() -> ProtocolError:
    return ProtocolError(
        ErrorCode.MEDIA_NOT_FOUND,
        "this attachment has expired or was deleted; ask the sender to send it again",
    )


def upload_done() -> ProtocolError:
    return ProtocolError(
        ErrorCode.MEDIA_UPLOAD_DONE, "this upload is complete; it takes no more parts"
    )


class MediaService:
    def __init__(
        self,
        store: MediaStore,
        blobs: BlobStore,
        limiter: RateLimiter,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._limiter = limiter
        self._clock = clock
        self._settings = settings
        self._uploads = Limit.parse(settings.limit_media_uploads_per_account)
        self.max_blob_bytes = blob_size(settings.media_max_bytes)

    # Uploads ------------------------------------------------------------------------------

    async def create_upload(self, who: Principal, size: int, recipients: int | None) -> UploadSlot:
        s = self._settings
        if size > self.max_blob_bytes:  # before anything is stored or counted
            raise ProtocolError(
                ErrorCode.MEDIA_TOO_LARGE,
                f"the file is {in_units(size)}; this server accepts attachments up to "
                f"{in_units(s.media_max_bytes)}",
                limit=self.max_blob_bytes,
            )
        await self._limiter.hit("media-uploads", who.account_id, self._uploads)
        now = self._clock.now_ms()
        record = MediaRecord(
            id=new_media_id(),
            account_id=who.account_id,
            device_id=who.device_id,
            size=size,
            part_size=choose_part_size(size, s.media_part_bytes),
            upload="",
            state=UPLOADING,
            created=now,
            expires=now + SLOT_MS,
            recipients=recipients,
            downloads=0,
        )
        try:
            await self._store.create_media(
                record, now - DAY_MS, s.media_quota_bytes_per_day, s.media_max_pending_uploads
            )
        except MediaQuotaExceeded as exc:
            raise ProtocolError(
                ErrorCode.MEDIA_QUOTA,
                f"this account may upload {in_units(s.media_quota_bytes_per_day)} of "
                f"attachments a day and has used {in_units(exc.used)}; try again tomorrow",
                limit=s.media_quota_bytes_per_day,
                used=exc.used,
            ) from None
        except TooManyPendingUploads:
            raise ProtocolError(
                ErrorCode.MEDIA_PENDING,
                f"this account has {s.media_max_pending_uploads} unfinished uploads; finish "
                "one (or wait a day for them to expire) before starting another",
                limit=s.media_max_pending_uploads,
            ) from None
        try:
            upload = await self._blobs.create_upload(record.id, size, record.part_size)
        except Exception:  # the backend refused (a full disk, the store down): no slot
            await self._store.delete_media([record.id])
            raise
        if upload:
            await self._store.set_media_upload(record.id, upload)
        numbers = range(1, part_count(size, record.part_size) + 1)
        return await self._slot(dataclasses.replace(record, upload=upload), numbers, (), now)

    async def upload_status(self, who: Principal, media_id: str) -> UploadSlot:
        """What the backend holds of the slot, and fresh URLs for the missing parts."""
        record = await self._own_upload(who, media_id)
        try:
            received = await self._blobs.received_parts(media_id, record.upload)
        except BlobMissing:
            raise not_found() from None
        total = part_count(record.size, record.part_size)
        have = {p.n for p in received if p.n <= total and p.size == self._span(record, p.n)[1]}
        missing = [n for n in range(1, total + 1) if n not in have]
        return await self._slot(record, missing, tuple(sorted(have)), self._clock.now_ms())

    async def abandon_upload(self, who: Principal, media_id: str) -> None:
        """The uploader gives an unfinished slot up: it stops counting as pending at once,
        its partial bytes and its row go. Another account's id, an unknown, expired or already
        abandoned one answer 404 media_not_found alike (ids cannot be probed); a repeat thus
        changes nothing more. A completed upload answers 409 media_upload_done."""
        record = await self._own_upload(who, media_id)
        if not await self._store.abandon_media(media_id, who.account_id, self._clock.now_ms()):
            await self._own_upload(who, media_id)  # completed or swept meanwhile: says which
            raise not_found()
        try:
            await self._blobs.delete(media_id, record.upload)
        except Exception as exc:  # the slot has expired: the next sweep deletes it
            log_failure(log, "could not delete an abandoned upload's parts", exc=exc)
            return
        await self._store.delete_media([media_id])
        log.info("deleted an abandoned upload")

    async def _slot(
        self, record: MediaRecord, numbers: Sequence[int], received: tuple[int, ...], now: int
    ) -> UploadSlot:
        expires = min(now + self._settings.media_upload_url_seconds * 1000, record.expires)
        parts = tuple(
            [
                PartUrl(
                    n,
                    await self._blobs.part_url(
                        record.id, record.upload, n, self._span(record, n)[1], expires
                    ),
                )
                for n in numbers
            ]
        )
        return UploadSlot(
            record.id, record.size, record.part_size, parts, received, expires, record.expires
        )

    async def complete(
        self, who: Principal, media_id: str, parts: Sequence[tuple[int, str]]
    ) -> StoredBlob:
        found = await self._store.get_media(media_id)
        if found is not None and found.complete and found.account_id == who.account_id:
            return self._stored(found)  # a retried completion: answered the same
        record = await self._own_upload(who, media_id)
        total = part_count(record.size, record.part_size)
        spans = [(n, self._span(record, n)[1]) for n in range(1, total + 1)]
        if any(n > total for n, _ in parts):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"this upload has {total} parts", parts=total
            )
        # The client's etags are checked where it gives them; a part it does not list (a
        # resumed upload whose earlier etags it lost) is taken as the backend holds it.
        missing: list[int] = []
        try:
            await self._blobs.complete(media_id, record.upload, spans, dict(parts))
        except PartsMismatch as exc:
            missing = list(exc.missing)
        except BlobMissing:
            raise not_found() from None
        if missing:
            raise ProtocolError(
                ErrorCode.MEDIA_INCOMPLETE,
                f"{len(missing)} of {total} parts are missing or differ from what was "
                "uploaded; upload them again, then complete",
                missing=sorted(missing)[:MAX_LISTED],
            )
        expires = self._clock.now_ms() + int(self._settings.media_retention_days * DAY_MS)
        done = await self._store.complete_media(media_id, expires)
        if done is None:  # completed concurrently, or swept meanwhile
            done = await self._store.get_media(media_id)
            if done is None or not done.complete:
                raise not_found()
        log.info("stored a media blob (%d parts)", total)
        return self._stored(done)

    async def _own_upload(self, who: Principal, media_id: str) -> MediaRecord:
        record = await self._store.get_media(media_id)
        if (
            record is None
            or record.account_id != who.account_id
            or record.expires <= self._clock.now_ms()
        ):
            raise not_found()
        if record.complete:
            raise upload_done()
        return record

    @staticmethod
    def _span(record: MediaRecord, n: int) -> tuple[int, int]:
        return part_span(record.size, record.part_size, n)

    @staticmethod
    def _stored(record: MediaRecord) -> StoredBlob:
        return StoredBlob(record.id, record.size, record.expires)

    # Downloads ----------------------------------------------------------------------------

    async def download(self, who: Principal, media_id: str) -> DownloadGrant:
        record = await self.live_blob(media_id)
        now = self._clock.now_ms()
        lifetime = self._settings.media_download_url_seconds * 1000
        early = now + lifetime if self._settings.media_delete_when_downloaded else None
        await self._store.count_download(media_id, who.account_id, who.device_id, early)
        # Not capped at the blob's expiry: a URL that outlives its blob answers 404
        # media_not_found (spec §6), which tells the user more than an expired link would.
        url = await self._blobs.download_url(media_id, now + lifetime)
        return DownloadGrant(url, record.size, record.expires)

    async def live_blob(self, media_id: str) -> MediaRecord:
        """The complete, unexpired blob's record, else media_not_found."""
        record = await self._store.get_media(media_id)
        if record is None or not record.complete or record.expires <= self._clock.now_ms():
            raise not_found()
        return record

    # Expiry -------------------------------------------------------------------------------

    async def sweep(self, now: int) -> tuple[int, int]:
        """Delete expired blobs and unfinished slots: bytes first, then the row, so a crash
        in between leaves a row the next sweep finds again (never orphaned bytes). A blob the
        backend cannot delete now keeps its row and is tried at the next sweep. Returns
        (blobs, bytes) deleted."""
        blobs = total = 0
        for _ in range(SWEEP_MAX_BATCHES):
            batch = await self._store.expired_media(now, SWEEP_BATCH)
            gone: list[str] = []
            for record in batch:
                try:
                    await self._blobs.delete(record.id, None if record.complete else record.upload)
                except Exception as exc:
                    log_failure(log, "could not delete an expired media blob", exc=exc)
                    continue
                gone.append(record.id)
                total += record.size
            blobs += await self._store.delete_media(gone)
            if len(batch) < SWEEP_BATCH or not gone:
                break
        if blobs:
            log.info("deleted %d expired media blob(s), %d bytes", blobs, total)
        return blobs, total
