"""Blobs on local disk, under PORCH_MEDIA_DIR (default <data dir>/media): the default backend.

    uploads/<id>/data        the blob being uploaded: a sparse file of its full size, whose
                             disk blocks are allocated only as parts' bytes are written
    uploads/<id>/<n>.part    part n's marker: written (and fsynced) only after every byte of
                             the part is on disk, so a crash mid-part leaves it uncounted
    blobs/<id[:2]>/<id>      a complete blob, moved there in one rename on completion

An unfinished upload lives only under uploads/, so partial state is never mistaken for a
complete blob. Every path is built from a media id that matched MEDIA_ID_RE, never from
other client strings. Parts are written with pwrite at their offset, so parts may arrive in
any order and in parallel, and a re-sent part overwrites itself. Blocking calls run in
worker threads; a part is streamed through a bounded buffer (WRITE_BYTES), never held whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from porch.server.lifecycle import Component
from porch.server.media.base import (
    BlobFile,
    BlobMissing,
    PartsMismatch,
    PartTooLong,
    PartTooShort,
    ReceivedPart,
    StorageFull,
    check_parts,
)
from porch.server.media.layout import valid_media_id
from porch.server.media.signing import UrlSigner

WRITE_BYTES = 1 << 20  # bytes gathered before one pwrite: bounds memory per part upload
PART_ROUTE = "/v1/media/parts/{id}/{n}"
BLOB_ROUTE = "/v1/media/blobs/{id}"


def part_path(media_id: str, n: int) -> str:
    return PART_ROUTE.format(id=media_id, n=n)


def blob_path(media_id: str) -> str:
    return BLOB_ROUTE.format(id=media_id)


class FilesystemBlobs(Component):
    name = "fs"

    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self._root = root
        self._signer = signer

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        for sub in ("uploads", "blobs"):
            await asyncio.to_thread((self._root / sub).mkdir, parents=True, exist_ok=True)
        yield

    # Paths: only from validated ids -------------------------------------------------------

    def _upload_dir(self, media_id: str) -> Path:
        if not valid_media_id(media_id):
            raise BlobMissing(media_id)
        return self._root / "uploads" / media_id

    def _blob(self, media_id: str) -> Path:
        if not valid_media_id(media_id):
            raise BlobMissing(media_id)
        return self._root / "blobs" / media_id[:2] / media_id

    # BlobStore ----------------------------------------------------------------------------

    async def create_upload(self, media_id: str, size: int, part_size: int) -> str:
        await asyncio.to_thread(self._create, self._upload_dir(media_id), size)
        return ""

    @staticmethod
    def _create(directory: Path, size: int) -> None:
        directory.mkdir()
        fd = os.open(directory / "data", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Sparse, never preallocated (fallocate): an empty slot must not hold disk, or
            # PORCH_MEDIA_MAX_PENDING_UPLOADS slots at the size limit pin gigabytes per account
            # with no byte sent. Blocks are allocated by pwrite as parts arrive.
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    async def part_url(self, media_id: str, upload: str, n: int, length: int, expires: int) -> str:
        return await self._signer.sign("PUT", part_path(media_id, n), expires)

    async def received_parts(self, media_id: str, upload: str) -> list[ReceivedPart]:
        return await asyncio.to_thread(self._received, self._upload_dir(media_id))

    @staticmethod
    def _received(directory: Path) -> list[ReceivedPart]:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            raise BlobMissing(directory.name) from None
        parts = []
        for name in names:
            stem, _, suffix = name.partition(".")
            if suffix != "part" or not stem.isdigit():
                continue  # the data file, or a marker being written (.part.tmp)
            etag, _, size = (directory / name).read_text().partition(" ")
            parts.append(ReceivedPart(int(stem), etag, int(size)))
        return sorted(parts, key=lambda p: p.n)

    async def complete(
        self,
        media_id: str,
        upload: str,
        parts: Sequence[tuple[int, int]],
        etags: Mapping[int, str],
    ) -> None:
        await asyncio.to_thread(
            self._complete, self._upload_dir(media_id), self._blob(media_id), parts, etags
        )

    def _complete(
        self,
        directory: Path,
        final: Path,
        parts: Sequence[tuple[int, int]],
        etags: Mapping[int, str],
    ) -> None:
        if not directory.exists() and final.exists():
            return  # completed before (a retried request)
        missing = check_parts(self._received(directory), parts, etags)
        if missing:
            raise PartsMismatch(missing)
        data = directory / "data"
        _fsync_path(data)
        final.parent.mkdir(exist_ok=True)
        os.replace(data, final)
        _fsync_path(final.parent)
        shutil.rmtree(directory, ignore_errors=True)

    async def download_url(self, media_id: str, expires: int) -> str:
        self._blob(media_id)  # validates the id
        return await self._signer.sign("GET", blob_path(media_id), expires)

    async def delete(self, media_id: str, upload: str | None) -> None:
        directory, final = self._upload_dir(media_id), self._blob(media_id)

        def remove() -> None:
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                final.unlink()

        await asyncio.to_thread(remove)

    # LocalBlobStore -----------------------------------------------------------------------

    async def write_part(
        self, media_id: str, n: int, offset: int, length: int, chunks: AsyncIterator[bytes]
    ) -> str:
        directory = self._upload_dir(media_id)
        marker = directory / f"{n}.part"
        try:
            fd = await asyncio.to_thread(_open_part, directory, marker)
        except FileNotFoundError:
            raise BlobMissing(media_id) from None
        digest = hashlib.blake2b(digest_size=16)
        try:
            written = 0
            pending: list[bytes] = []
            buffered = 0
            async for chunk in chunks:
                if written + buffered + len(chunk) > length:
                    raise PartTooLong(media_id)
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= WRITE_BYTES:
                    data = b"".join(pending)
                    pending, buffered = [], 0
                    await asyncio.to_thread(_write, fd, data, offset + written, digest)
                    written += len(data)
            if pending:
                data = b"".join(pending)
                await asyncio.to_thread(_write, fd, data, offset + written, digest)
                written += len(data)
            if written != length:
                raise PartTooShort(media_id)
            await asyncio.to_thread(os.fsync, fd)
        finally:
            await asyncio.to_thread(os.close, fd)
        etag = f'"{digest.hexdigest()}"'
        await asyncio.to_thread(_mark, marker, f"{etag} {length}")
        return etag

    def open_blob(self, media_id: str) -> BlobFile:
        path = self._blob(media_id)
        try:
            return BlobFile(path, path.stat().st_size)
        except FileNotFoundError:
            raise BlobMissing(media_id) from None


def _open_part(directory: Path, marker: Path) -> int:
    # A part sent again stops counting until its new bytes are all on disk.
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    return os.open(directory / "data", os.O_WRONLY)


def _write(fd: int, data: bytes, offset: int, digest: hashlib.blake2b) -> None:
    view = memoryview(data)
    try:
        while view:
            done = os.pwrite(fd, view, offset)
            view, offset = view[done:], offset + done
    except OSError as exc:
        # The blob file is sparse (no blocks reserved per slot), so a full disk shows here.
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull from None
        raise
    digest.update(data)


def _mark(marker: Path, text: str) -> None:
    tmp = marker.with_suffix(".part.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, marker)
    _fsync_path(marker.parent)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
