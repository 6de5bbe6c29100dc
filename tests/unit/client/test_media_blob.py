"""BlobSource: the blob of a file from any part boundary, identical to the one-shot cipher."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from porch.client.media_blob import CHUNK_BYTES, BlobSource
from porch.crypto.attachment import encrypt_attachment, new_key


def _read(source: BlobSource, start: int, end: int) -> bytes:
    out, pos = b"", start
    while pos < end:
        chunk = source.read(pos, end)
        assert 0 < len(chunk) <= CHUNK_BYTES + 16
        out += chunk
        pos += len(chunk)
    return out


@pytest.mark.parametrize(
    ("size", "part"),
    [(0, 1 << 20), (15, 1 << 20), (1000, 112), (3 * CHUNK_BYTES + 7, CHUNK_BYTES + 16 * 1000)],
)
def test_parts_in_any_order_match_the_one_shot_blob(tmp_path: Path, size: int, part: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    key, iv = new_key(), os.urandom(16)
    blob, _, digest = encrypt_attachment(data, key, iv)
    source = BlobSource(path, size, key, iv)
    assert source.total == len(blob)
    parts = [(s, min(s + part, len(blob))) for s in range(0, len(blob), part)]
    assert b"".join(_read(source, s, e) for s, e in parts) == blob
    for s, e in reversed(parts[-3:]):  # resends, newest first: resumed from snapshots
        assert _read(source, s, e) == blob[s:e]
    assert source.digest() == digest == hashlib.sha256(blob).digest()
    source.close()


def test_a_resend_resumes_at_the_parts_snapshot_not_the_start(tmp_path: Path) -> None:
    size, part = 5 * CHUNK_BYTES, 2 * CHUNK_BYTES
    path = tmp_path / "f"
    path.write_bytes(os.urandom(size))
    source = BlobSource(path, size, new_key())
    _read(source, 0, part)
    _read(source, part, 2 * part)
    assert set(source._snapshots) == {part, 2 * part}
    again = _read(source, part, 2 * part)  # part 2 again
    assert source.restarts == 2
    assert again == _read(source, part, 2 * part)


def test_digest_without_reading_everything(tmp_path: Path) -> None:
    data = os.urandom(70_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    key, iv = new_key(), os.urandom(16)
    _, _, digest = encrypt_attachment(data, key, iv)
    assert BlobSource(path, len(data), key, iv).digest() == digest
