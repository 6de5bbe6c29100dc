"""Downloading an attachment: fetch the ciphertext, verify it, only then decrypt (spec §1, §6;
docs/design.md, "Attachment transfers").

1. GET /v1/media/{id} gives a short-lived signed URL; the blob streams into
   ``<downloads>/.partial/<id>`` (ciphertext only), resuming with a Range request after a
   dropped connection (and after a crash: the partial file stays; if the blob fails with
   what it held, it is fetched once more from its first byte before being refused).
2. Pass one, AttachmentVerifier (length, digest and MAC), is fed the ciphertext as it is
   written (and rebuilt from the partial file after a crash). A blob that fails is deleted
   and refused with attachment_tampered; no plaintext was written.
3. Pass two decrypts into a hidden temporary file next to the destination, fsyncs it and
   renames it to a safe, unused name. The caller records the path (downloads table).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import httpx

from porch.client.errors import AttachmentRejected, ClientCode, ServerError
from porch.client.media_api import MediaApi
from porch.client.media_http import Attempts, Sleep, failure_of, resolve_url
from porch.client.media_names import reserve_name
from porch.crypto.attachment import AttachmentDecryptor, AttachmentVerifier, blob_size
from porch.crypto.errors import AttachmentTampered, CryptoError

if TYPE_CHECKING:
    from porch.crypto.content import Attachment

Progress = Callable[[int, int], None]

CHUNK_BYTES = 1 << 20

PARTIAL_DIR = ".partial"

NOT_FOUND = (
    "this attachment has expired or was deleted on the server; ask the sender to send it again"
)


def _tampered() -> AttachmentRejected:
    return AttachmentRejected(
        "the attachment failed its integrity check (it was altered or damaged on the way); "
        "it was not saved; ask the sender to send it again"
    )


def _not_found(status: int | None = 404) -> ServerError:
    return ServerError("media_not_found", NOT_FOUND, status)


async def fetch(
    media: MediaApi,
    http: httpx.AsyncClient,
    pointer: Attachment,
    dest_dir: Path,
    *,
    progress: Progress | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Path:
    """Download, verify and decrypt ``pointer`` into dest_dir; returns the new file's path."""
    try:
        total = blob_size(pointer.size)
    except CryptoError:  # a size past the wire bound (spec §1): no blob can match it
        raise AttachmentRejected(
            f"the attachment claims {pointer.size:,} bytes, more than any attachment can hold; "
            "it cannot be downloaded",
            code=ClientCode.ATTACHMENT_INVALID,
        ) from None
    partial = _Partial(dest_dir / PARTIAL_DIR / pointer.id, pointer)
    partial.path.parent.mkdir(parents=True, exist_ok=True)
    # A partial left by a crash may hold torn bytes (a write cut short): if the blob fails
    # with it, it is discarded and fetched once more from its first byte before the blob is
    # called tampered.
    resumed = partial.size() > 0
    while True:
        try:
            await _fetch_blob(media, http, pointer.id, partial, total, progress, sleep)
            partial.finish()
            break
        except AttachmentTampered:
            partial.path.unlink(missing_ok=True)
            if not resumed:
                raise _tampered() from None
            resumed = False
            partial = _Partial(partial.path, pointer)
    try:
        path = await asyncio.to_thread(_decrypt, partial.path, pointer, dest_dir)
    finally:
        partial.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # another download may still use it: then it stays
            partial.path.parent.rmdir()
    return path


class _Partial:
    """The partial ciphertext file, and an AttachmentVerifier fed exactly its bytes: pass one
    runs as the blob arrives, so only the decryption reads the file again. After a crash (the
    file is there, the verifier is not) or a restart from byte 0 it is rebuilt from the file.
    Its methods do file I/O: the caller runs them in a worker thread."""

    def __init__(self, path: Path, pointer: Attachment) -> None:
        self.path = path
        self._pointer = pointer
        self._verifier: AttachmentVerifier | None = None
        self._fed = 0

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def catch_up(self) -> None:
        """Feed the verifier what the file holds beyond what it has seen."""
        have = self.size()
        if self._verifier is None or self._fed > have:
            self._verifier = AttachmentVerifier(
                self._pointer.key, self._pointer.digest, self._pointer.size
            )
            self._fed = 0
        if have > self._fed:
            with self.path.open("rb") as f:
                f.seek(self._fed)
                while self._fed < have and (chunk := f.read(min(CHUNK_BYTES, have - self._fed))):
                    self._verifier.update(chunk)
                    self._fed += len(chunk)

    def restart(self) -> None:
        """Empty the file and the verifier: the blob comes again from its first byte."""
        self.path.write_bytes(b"")
        self._verifier = None
        self.catch_up()

    def append(self, out: BinaryIO, data: bytes) -> int:
        assert self._verifier is not None
        out.write(data)
        self._verifier.update(data)  # after the write: a failed write is not counted
        self._fed += len(data)
        return len(data)

    def finish(self) -> None:
        """Length, digest and MAC (AttachmentTampered if any is wrong)."""
        assert self._verifier is not None
        self._verifier.finish()


async def _fetch_blob(
    media: MediaApi,
    http: httpx.AsyncClient,
    media_id: str,
    partial: _Partial,
    total: int,
    progress: Progress | None,
    sleep: Sleep,
) -> None:
    attempts = Attempts(
        "download", "the part received is kept; run the download again to resume", sleep
    )
    url: httpx.URL | None = None
    while True:
        have = partial.size()
        if have > total:  # not ours to trust: start again
            partial.path.unlink()
            have = 0
        await asyncio.to_thread(partial.catch_up)
        if have == total:
            return
        try:
            if url is None:
                try:
                    info = await media.blob_url(media_id)
                except ServerError as exc:
                    if exc.code == "media_not_found":
                        raise _not_found(exc.status) from None
                    raise
                if info.size != total:  # the server holds another blob than the pointer's
                    raise _tampered()
                url = resolve_url(media.base_url, info.url)
            if await _stream(http, url, partial, have, total, progress):
                url = None  # expired (or refused): the next attempt asks for a fresh URL
                raise _Dropped("the download URL was refused")
        except _Dropped as why:
            await attempts.failed(str(why))


class _Dropped(Exception):
    pass


async def _stream(
    http: httpx.AsyncClient,
    url: httpx.URL,
    partial: _Partial,
    have: int,
    total: int,
    progress: Progress | None,
) -> bool:
    """Append the blob from byte ``have``; True when the URL expired (ask for a new one)."""
    headers = {"range": f"bytes={have}-"} if have else {}
    try:
        async with http.stream("GET", url, headers=headers) as response:
            if response.status_code == 403:
                return True
            if response.status_code == 404:
                raise _not_found()
            if response.status_code >= 500:
                raise _Dropped(f"HTTP {response.status_code}")
            if response.is_error:
                await response.aread()
                raise failure_of(response, "download")
            if have and response.status_code != 206:  # no Range support: from the start
                have = 0
                await asyncio.to_thread(partial.restart)
            # Owned by this one task; every write goes to the partial ciphertext file only.
            with partial.path.open("r+b" if have else "wb") as out:
                out.seek(have)
                out.truncate()
                # Network chunks are small: written a MiB at a time, off the event loop, and
                # what arrived before a drop is written too (the resume starts after it).
                buffer = bytearray()
                try:
                    async for chunk in response.aiter_bytes():
                        if have + len(buffer) + len(chunk) > total:
                            buffer.clear()
                            raise _tampered()  # longer than the pointer says: keep nothing
                        buffer += chunk
                        if len(buffer) >= CHUNK_BYTES:
                            have += await asyncio.to_thread(partial.append, out, bytes(buffer))
                            buffer.clear()
                        if progress is not None:
                            progress(have + len(buffer), total)
                finally:
                    if buffer:
                        have += await asyncio.to_thread(partial.append, out, bytes(buffer))
                await asyncio.to_thread(os.fsync, out.fileno())
    except httpx.TransportError as exc:
        raise _Dropped(type(exc).__name__) from None
    except AttachmentRejected:
        partial.path.unlink(missing_ok=True)
        raise
    if have < total:
        raise _Dropped("the connection ended early")
    return False


def _decrypt(partial: Path, pointer: Attachment, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".{pointer.id}.porch-tmp"
    try:
        decryptor = AttachmentDecryptor(pointer.key, pointer.size)
        # 0600 like every file of the profile (docs/security.md); the rename keeps the mode.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with partial.open("rb") as f, os.fdopen(fd, "wb") as out:
            while chunk := f.read(CHUNK_BYTES):
                out.write(decryptor.update(chunk))
            out.write(decryptor.finish())
            out.flush()
            os.fsync(out.fileno())
        final = reserve_name(dest_dir, pointer)
        os.replace(tmp, final)
    except AttachmentTampered:  # verified above: only a blob changed between the passes
        raise _tampered() from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final
