"""Raw HTTP helpers for the media tests: one account's client, and the signed-URL transfers
(no credentials: the URL is the capability; an S3 presigned URL must not get our header)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from porch.client import Client
from tests.integration.server import ServerProcess
from tests.integration.test_groups_api import Api


class MediaHttp(Api):
    """Api (status-checking calls with the account's credentials) plus the media steps."""

    def __init__(self, server: ServerProcess, client: Client) -> None:
        super().__init__(server, client)
        self.base = httpx.URL(server.url)
        self.plain = httpx.AsyncClient(timeout=120)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.plain.aclose()

    def url(self, url: str) -> httpx.URL:
        return self.base.join(url)  # Porch's own URLs are paths; S3's are absolute

    async def slot(self, size: int, **extra: Any) -> Any:
        return await self.ok("POST", "/v1/media/uploads", 201, json={"size": size, **extra})

    async def put(self, url: str, data: bytes, **kw: Any) -> httpx.Response:
        return await self.plain.put(self.url(url), content=data, **kw)

    async def put_parts(
        self, slot: Any, blob: bytes, only: set[int] | None = None
    ) -> dict[int, str]:
        etags = {}
        size = slot["part_size"]
        for part in slot["parts"]:
            n = part["n"]
            if only is not None and n not in only:
                continue
            r = await self.put(part["url"], blob[(n - 1) * size : n * size])
            assert r.status_code == 200, r.text
            etags[n] = r.headers["etag"]
        return etags

    async def complete(self, media_id: str, etags: dict[int, str]) -> Any:
        parts = [{"n": n, "etag": e} for n, e in sorted(etags.items())]
        return await self.ok(
            "POST", f"/v1/media/uploads/{media_id}/complete", json={"parts": parts}
        )

    async def upload(self, blob: bytes, **extra: Any) -> str:
        slot = await self.slot(len(blob), **extra)
        await self.complete(slot["id"], await self.put_parts(slot, blob))
        return str(slot["id"])

    async def fetch(self, media_id: str) -> bytes:
        grant = await self.ok("GET", f"/v1/media/{media_id}")
        r = await self.plain.get(self.url(grant["url"]))
        assert r.status_code == 200, r.text
        assert len(r.content) == grant["size"]
        return r.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def running_server(tmp_path: Path, env: dict[str, str]) -> Iterator[ServerProcess]:
    """A server under tmp_path with these PORCH_* settings, stopped afterwards."""
    srv = ServerProcess(tmp_path / "server-data", env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
