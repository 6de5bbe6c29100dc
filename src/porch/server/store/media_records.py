"""The media store's interface and records (spec §6): upload slots, blobs, downloads.

The rows hold what docs/security.md lists for media and nothing else: sizes, the uploading
account and device, times, the expected and counted downloads. Blob bytes live in a blob
backend (server/media/); a row goes only after its bytes are gone (services/media.py sweep).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from porch.server.store.errors import StoreError

UPLOADING = "uploading"
COMPLETE = "complete"


class MediaQuotaExceeded(StoreError):
    """The account's slots of the last day would pass its daily byte quota."""

    def __init__(self, used: int) -> None:
        super().__init__("the daily media quota is used up")
        self.used = used


class TooManyPendingUploads(StoreError):
    """The account has as many unfinished upload slots as it may."""


@dataclass(frozen=True, slots=True)
class MediaRecord:
    id: str
    account_id: str
    device_id: int
    size: int  # blob (ciphertext) bytes
    part_size: int
    upload: str  # the backend's handle: the S3 UploadId, "" on the filesystem
    state: str  # UPLOADING or COMPLETE
    created: int
    expires: int  # the slot's end while uploading, the blob's once complete
    recipients: int | None  # devices that will download it, if the uploader said
    downloads: int  # distinct (account, device) pairs that fetched a download URL

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE


class MediaStore(Protocol):
    """Upload slots, blobs and downloads (store/media.py)."""

    async def create_media(
        self, record: MediaRecord, since: int, quota: int, max_pending: int
    ) -> None:
        """Insert the slot, atomically with the account's checks: the sizes of its slots
        created after `since`, this one included, at most `quota` (MediaQuotaExceeded), and
        fewer than `max_pending` unfinished unexpired slots (TooManyPendingUploads)."""
        ...

    async def set_media_upload(self, media_id: str, upload: str) -> None:
        """Record the backend's handle of the slot's upload (made after the slot's row)."""
        ...

    async def get_media(self, media_id: str) -> MediaRecord | None: ...
    async def complete_media(self, media_id: str, expires: int) -> MediaRecord | None:
        """Mark the slot complete with the blob's expiry; None unless it was uploading."""
        ...

    async def count_download(
        self, media_id: str, account_id: str, device_id: int, early_expiry: int | None
    ) -> bool:
        """Count a download by the device once (True the first time). With early_expiry,
        a blob whose downloads reached its recipients expires then, if not sooner."""
        ...

    async def abandon_media(self, media_id: str, account_id: str, now: int) -> bool:
        """Expire ``account_id``'s unfinished, unexpired slot now; False if there is none."""
        ...

    async def expired_media(self, now: int, limit: int) -> list[MediaRecord]:
        """Slots and blobs whose expiry is past, oldest first, at most limit."""
        ...

    async def delete_media(self, media_ids: Sequence[str]) -> int:
        """Delete the rows and their download records; how many rows went."""
        ...
