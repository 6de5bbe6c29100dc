"""A local store on a fresh file with a fresh key, shared by the client store tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client.store import LocalStore
from porch.crypto.at_rest import Sealer


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def store(tmp_path: Path, key: bytes) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "client.db", Sealer(key))
    yield s
    s.close()
