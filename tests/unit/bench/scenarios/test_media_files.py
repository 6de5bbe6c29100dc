"""The media scenario's files: the random source, its digest, the timed copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

from porch.bench.scenarios.media_files import sha256_file, timed_copy, write_random
from porch.bench.stats import MB


def test_write_random_streams_the_size_and_returns_its_digest(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    size = 2 * MB + 123  # not a whole number of chunks
    digest = write_random(path, size)
    data = path.read_bytes()
    assert len(data) == size and hashlib.sha256(data).hexdigest() == digest == sha256_file(path)
    assert write_random(tmp_path / "g.bin", size) != digest  # random, not a fixed pattern


def test_timed_copy_times_a_real_copy_and_removes_it(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    write_random(source, MB)
    dest = tmp_path / "copy.bin"
    assert timed_copy(source, dest) > 0
    assert not dest.exists() and source.stat().st_size == MB
