"""The ciphertext of a file, produced on demand from any part boundary, in constant memory.

An upload sends the blob (spec §1: iv || AES-256-CBC ciphertext || HMAC) in numbered parts; a
part that failed is sent again from its first byte. Instead of keeping the blob, BlobSource
keeps an encryptor snapshot (AttachmentEncryptor.snapshot, a few hundred bytes) at the start
of every part it has reached, and resumes the identical stream from the one before the part
wanted: reads are cut so that the blob reaches each part boundary exactly. A start with no
snapshot (inside the zero padding, or never reached) re-encrypts forward from the nearest
earlier one, reading the file again (docs/design.md, "Attachment transfers").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from porch.client.errors import MediaError
from porch.crypto.attachment import (
    IV_BYTES,
    AttachmentEncryptor,
    EncryptorSnapshot,
    blob_size,
)

# How much of the file is read and encrypted at once (the brief: 1 MiB chunks).
CHUNK_BYTES = 1 << 20


class BlobSource:
    """Blob bytes of ``path`` for ``key``: read(start, end) for the parts, then digest()."""

    def __init__(self, path: Path, size: int, key: bytes, iv: bytes | None = None) -> None:
        self.path = path
        self.size = size
        self.key = key
        self.iv = iv if iv is not None else os.urandom(IV_BYTES)
        self.total = blob_size(size)
        self._file: BinaryIO | None = None
        self._enc: AttachmentEncryptor | None = None
        self._tail: Iterator[bytes] | None = None  # the zero padding, final block and MAC
        self._pos = 0  # blob bytes produced so far by the current pass
        self._read = 0  # file bytes read so far by the current pass
        self._pending = b""  # the last bytes produced (at most one chunk)
        self._snapshots: dict[int, EncryptorSnapshot] = {}  # blob offset -> state there
        self._digest: bytes | None = None
        self.restarts = 0  # how often a pass began again from a snapshot (or the start)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> BinaryIO:
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except OSError as exc:
                raise MediaError(
                    f"cannot read {self.path.name} any more ({exc.strerror}); nothing was sent"
                ) from None
        return self._file

    def _restart(self, start: int) -> None:
        """Continue from the latest snapshot at or before ``start`` (or from the beginning)."""
        self.restarts += 1
        at = max((o for o in self._snapshots if o <= start), default=None)
        if at is None:
            self._enc = AttachmentEncryptor(self.key, self.size, iv=self.iv)
        else:
            self._enc = AttachmentEncryptor.resume(self._snapshots[at])
        self._tail = None
        self._pos = self._enc.produced
        self._read = self._enc.consumed
        self._pending = b""
        self._open().seek(self._read)

    def _produce(self, stop: int) -> bytes:
        """The next blob bytes, ending exactly at ``stop`` if ``stop`` is reachable."""
        assert self._enc is not None
        if self._read < self.size:
            want = min(CHUNK_BYTES, self.size - self._read)
            # Feeding n bytes from the start yields IV_BYTES + 16 * (n // 16) blob bytes, so
            # stopping at stop - IV_BYTES lands on the part boundary (a multiple of 16).
            room = stop - IV_BYTES - self._read
            if room > 0:
                want = min(want, room)
            data = self._open().read(want)
            if not data:
                raise MediaError(
                    f"{self.path.name} got shorter while it was being sent; nothing was sent"
                )
            self._read += len(data)
            out = self._enc.update(data)
        else:  # every byte the pointer promises was read (a file that grew is cut here)
            if self._tail is None:
                self._tail = self._enc.finish_chunks(CHUNK_BYTES)
            out = next(self._tail)
        self._pos += len(out)
        if self._pos == self.total:
            self._digest = self._enc.digest
        return out

    def read(self, start: int, end: int) -> bytes:
        """Up to CHUNK_BYTES of blob bytes from ``start`` (< end); call again for the rest.

        Synchronous on purpose: the caller runs it in a worker thread (file I/O and AES)."""
        if not 0 <= start < end <= self.total:
            raise ValueError(f"blob range {start}..{end} outside 0..{self.total}")
        if self._enc is None or start < self._pos - len(self._pending):
            self._restart(start)
        while start >= self._pos:
            self._pending = self._produce(end)
        first = self._pos - len(self._pending)  # blob offset of self._pending[0]
        chunk = self._pending[max(0, start - first) : end - first]
        if self._pos == end and end < self.total and end not in self._snapshots:
            assert self._enc is not None
            self._snapshots[end] = self._enc.snapshot()  # the next part starts here
        return chunk

    def digest(self) -> bytes:
        """SHA-256 of the whole blob (finishes a pass if none has reached the end)."""
        if self._digest is None:
            if self._enc is None:
                self._restart(0)
            while self._pos < self.total:
                self._pending = self._produce(self.total)
        assert self._digest is not None
        return self._digest
