"""What the media service asks of a blob backend (filesystem.py, s3.py), nothing about how.

One upload protocol for both (spec §6): a slot of numbered parts, each PUT to its own signed
URL. The filesystem backend receives the parts itself (write_part, through Porch's own
route); an S3 backend hands out the object store's presigned UploadPart URLs, so the bytes
never pass through Porch. Backends raise BlobError subclasses; the service maps them to API
errors (services/media.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self


class BlobError(Exception):
    """Base of blob backend failures."""


class BlobMissing(BlobError):
    """No such blob or upload (never created, deleted, or swept)."""


class PartsMismatch(BlobError):
    """Completion found parts missing or of the wrong size; `missing` lists their numbers."""

    def __init__(self, missing: Sequence[int]) -> None:
        super().__init__(f"{len(missing)} part(s) missing or of the wrong size")
        self.missing = tuple(missing)


class StorageFull(BlobError):
    """The disk (or its quota) has no room for a part's bytes now."""


class PartTooLong(BlobError):
    """A part body went on past the part's length (nothing past the part was written)."""


class PartTooShort(BlobError):
    """A part body ended before the part's length (the part is not counted)."""


@dataclass(frozen=True, slots=True)
class ReceivedPart:
    n: int
    etag: str  # quoted, as an HTTP ETag header carries it
    size: int


def check_parts(
    received: Sequence[ReceivedPart], parts: Sequence[tuple[int, int]], etags: Mapping[int, str]
) -> list[int]:
    """The numbers of `parts` [(n, length)] not received with that length, or received with
    another etag than `etags` names (quotes aside: clients may strip them)."""
    have = {p.n: p for p in received}
    return [
        n
        for n, length in parts
        if n not in have
        or have[n].size != length
        or (n in etags and have[n].etag.strip('"') != etags[n].strip('"'))
    ]


@dataclass(frozen=True, slots=True)
class BlobFile:
    """A complete blob on local disk (filesystem backend), for Porch's download route."""

    path: Path
    size: int


class BlobStore(Protocol):
    """Entered (`async with`) before use, like the other components (lifecycle.py)."""

    name: str  # "fs" or "s3"

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    async def create_upload(self, media_id: str, size: int, part_size: int) -> str:
        """Prepare an upload of `size` bytes; the backend's handle for it (the S3 UploadId,
        "" for the filesystem), which the caller keeps and passes back."""
        ...

    async def part_url(self, media_id: str, upload: str, n: int, length: int, expires: int) -> str:
        """Where part n (of `length` bytes) is PUT until `expires` (epoch ms): a path on
        Porch (filesystem) or the object store's absolute presigned URL (S3)."""
        ...

    async def received_parts(self, media_id: str, upload: str) -> list[ReceivedPart]:
        """The parts fully stored so far, by number. BlobMissing if the upload is gone."""
        ...

    async def complete(
        self,
        media_id: str,
        upload: str,
        parts: Sequence[tuple[int, int]],
        etags: Mapping[int, str],
    ) -> None:
        """Assemble the blob from parts [(n, length), ...] (every part, in order) after
        checking that each was received with exactly that length and, where `etags` names
        it, that etag (PartsMismatch otherwise). Completing a complete blob does nothing."""
        ...

    async def download_url(self, media_id: str, expires: int) -> str:
        """A URL that GETs the blob until `expires` (epoch ms)."""
        ...

    async def delete(self, media_id: str, upload: str | None) -> None:
        """Delete the blob, or abort the unfinished upload (`upload` given); gone already is
        fine (the sweep retries a crash half-way)."""
        ...


class LocalBlobStore(BlobStore, Protocol):
    """The filesystem backend's extra half: Porch's own part and blob routes use it."""

    async def write_part(
        self,
        media_id: str,
        n: int,
        offset: int,
        length: int,
        chunks: AsyncIterator[bytes],
    ) -> str:
        """Write part n's `length` bytes at `offset` from chunks; the part counts only once
        every byte is written and fsynced. Its etag. PartTooLong, PartTooShort, BlobMissing,
        StorageFull."""
        ...

    def open_blob(self, media_id: str) -> BlobFile:
        """The complete blob's file. BlobMissing if there is none."""
        ...
