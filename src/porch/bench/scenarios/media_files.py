"""The files of ``porch bench media``: the random source file, its digest, the copy baseline."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from porch.bench.stats import MB

CHUNK = MB  # bytes written / hashed at a time: a 1 GiB file never sits in memory


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` in chunks; return their SHA-256 (hex)."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def timed_copy(source: Path, dest: Path) -> float:
    """Seconds for copyfile + fsync of the copy (removed afterwards)."""
    started = time.perf_counter()
    shutil.copyfile(source, dest)
    with dest.open("rb+") as f:
        os.fsync(f.fileno())
    took = time.perf_counter() - started
    dest.unlink()
    return took
