from __future__ import annotations

import os

import pytest

# Client profiles in tests use key files, never the developer's OS keyring.
os.environ.setdefault("PORCH_KEYRING", "0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
