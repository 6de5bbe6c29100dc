"""An in-memory implementation of the server's media API (spec §6), for the transfer engine's
unit tests: parts with signed-looking URLs, status, completion, blob URLs with Range, and
faults on demand (a connection dropped in the middle of a part or of a download).

The real server is tested in tests/integration/test_media_e2e.py; this one lets a test break
the network at an exact byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE = "http://porch.test"


@dataclass
class Upload:
    size: int
    part_size: int
    parts: dict[int, bytes] = field(default_factory=dict)
    done: bool = False
    recipients: int | None = None

    @property
    def count(self) -> int:
        return math.ceil(self.size / self.part_size)


def _error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **details}})


class MediaServer:
    def __init__(self, part_size: int = 1 << 20, max_blob: int = 1 << 30) -> None:
        self.part_size = part_size
        self.max_blob = max_blob
        self.uploads: dict[str, Upload] = {}
        self.blobs: dict[str, bytes] = {}
        self.puts: list[int] = []  # part numbers, in the order their PUTs arrived
        self.ranges: list[str | None] = []  # Range header of each blob GET
        self.drop_put: tuple[int, int] | None = None  # (part, after bytes): fail once there
        self.drop_get_after: int | None = None  # fail one blob GET after this many bytes
        self.fail_status: list[int] = []  # statuses to answer the next PUTs with, once each
        self.refuse_blob = 0  # answer this many blob GETs with 403 (an expired signed URL)
        self.ignore_range = False  # answer every blob GET with the whole blob (200)
        self.abandoned: list[str] = []  # ids of the slots given up (DELETE), in order
        self.hang_put: int | None = None  # a PUT of this part never answers (until cancelled)
        self.hang_delete = False  # a DELETE never answers (an unreachable server)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/media/uploads":
            return self._create(json.loads(await request.aread()))
        if method == "PUT" and parts[:3] == ["v1", "media", "parts"]:
            return await self._put(parts[3], int(parts[4]), request)
        if method == "GET" and parts[:3] == ["v1", "media", "uploads"]:
            return self._status(parts[3])
        if method == "DELETE" and parts[:3] == ["v1", "media", "uploads"]:
            return await self._abandon(parts[3])
        if method == "POST" and path.endswith("/complete"):
            return self._complete(parts[3], json.loads(await request.aread()))
        if method == "GET" and parts[:3] == ["v1", "media", "blobs"]:
            return self._blob(parts[3], request)
        if method == "GET" and parts[:2] == ["v1", "media"]:
            blob = self.blobs.get(parts[2])
            if blob is None:
                return _error(404, "media_not_found", "this attachment has expired")
            url = f"/v1/media/blobs/{parts[2]}?exp=1&sig=x"
            return httpx.Response(200, json={"url": url, "size": len(blob), "expires": 1})
        return _error(404, "not_found", f"no route {method} {path}")

    def _urls(self, media_id: str, numbers: list[int]) -> list[dict[str, Any]]:
        return [{"n": n, "url": f"/v1/media/parts/{media_id}/{n}?exp=1&sig=x"} for n in numbers]

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        size = body["size"]
        if size > self.max_blob:
            return _error(
                413,
                "media_too_large",
                f"the file is {size} bytes; this server accepts attachments up to 250 kB",
                limit=self.max_blob,
            )
        media_id = secrets.token_urlsafe(16)
        up = Upload(size, self.part_size, recipients=body.get("recipients"))
        self.uploads[media_id] = up
        urls = self._urls(media_id, list(range(1, up.count + 1)))
        return httpx.Response(
            201, json={"id": media_id, "part_size": up.part_size, "parts": urls, "expires": 1}
        )

    async def _put(self, media_id: str, n: int, request: httpx.Request) -> httpx.Response:
        up = self.uploads[media_id]
        if up.done:
            return _error(409, "media_upload_done", "finished")
        self.puts.append(n)
        if self.hang_put == n:
            await asyncio.Event().wait()
        if self.fail_status:
            await request.aread()
            return httpx.Response(self.fail_status.pop(0))
        expected = min(up.part_size, up.size - (n - 1) * up.part_size)
        assert int(request.headers["content-length"]) == expected
        data = b""
        async for chunk in request.stream:  # type: ignore[union-attr]
            data += chunk
            if self.drop_put is not None and self.drop_put == (n, min(len(data), self.drop_put[1])):
                self.drop_put = None
                raise httpx.WriteError("connection reset by peer")
        if len(data) != expected:
            return _error(400, "media_part_length", "wrong length")
        up.parts[n] = data
        return httpx.Response(200, headers={"etag": f'"{hashlib.md5(data).hexdigest()}"'})

    async def _abandon(self, media_id: str) -> httpx.Response:
        if self.hang_delete:
            await asyncio.Event().wait()
        up = self.uploads.get(media_id)
        if up is None:
            return _error(404, "media_not_found", "gone")
        if up.done:
            return _error(409, "media_upload_done", "finished")
        del self.uploads[media_id]
        self.abandoned.append(media_id)
        return httpx.Response(204)

    def _status(self, media_id: str) -> httpx.Response:
        up = self.uploads[media_id]
        missing = [n for n in range(1, up.count + 1) if n not in up.parts]
        body = {
            "id": media_id,
            "part_size": up.part_size,
            "received": sorted(up.parts),
            "parts": self._urls(media_id, missing),
        }
        return httpx.Response(200, json=body)

    def _complete(self, media_id: str, body: dict[str, Any]) -> httpx.Response:
        up = self.uploads[media_id]
        missing = [n for n in range(1, up.count + 1) if n not in up.parts]
        if missing:
            return _error(409, "media_incomplete", "missing parts", missing=missing)
        for p in body["parts"]:
            assert p["etag"] == f'"{hashlib.md5(up.parts[p["n"]]).hexdigest()}"'
        up.done = True
        self.blobs[media_id] = b"".join(up.parts[n] for n in range(1, up.count + 1))
        return httpx.Response(200, json={"id": media_id, "size": up.size, "expires": 1})

    def _blob(self, media_id: str, request: httpx.Request) -> httpx.Response:
        blob = self.blobs.get(media_id)
        if blob is None:
            return _error(404, "media_not_found", "gone")
        if self.refuse_blob:
            self.refuse_blob -= 1
            return _error(403, "media_url_invalid", "expired")
        header = request.headers.get("range")
        self.ranges.append(header)
        header = None if self.ignore_range else header
        start = int(header.removeprefix("bytes=").rstrip("-")) if header else 0
        body = blob[start:]
        status = 206 if header else 200
        if self.drop_get_after is not None:
            cut, self.drop_get_after = self.drop_get_after, None
            return httpx.Response(status, stream=_Dropping(body, cut))
        return httpx.Response(status, content=body)


class _Dropping(httpx.AsyncByteStream):
    """A response body that breaks after ``cut`` bytes, as a reset connection does."""

    def __init__(self, body: bytes, cut: int) -> None:
        self._body, self._cut = body, cut

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self._body[: self._cut]
        raise httpx.ReadError("connection reset by peer")
