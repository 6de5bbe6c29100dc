"""The server's media routes as typed calls, and the signed-URL transfers (spec §6).

Porch's own routes go through HttpApi (device auth, errors mapped); part and blob URLs are
capabilities and are fetched with a second, credential-free client: an S3 presigned URL must
not carry our Authorization header (the store would refuse it), and a Porch URL needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from porch.client.api import HttpApi
from porch.client.errors import ClientCode, ServerError

# Bounds on what the server may answer (spec §6): parts per upload, and the length of a URL.
MAX_PARTS = 10_000
MAX_URL_CHARS = 8192
MAX_PART_BYTES = 5 << 30  # S3's own limit for one part


@dataclass(frozen=True, slots=True)
class Slot:
    """An upload slot: where each part goes (the URLs of the parts still missing)."""

    id: str
    part_size: int
    urls: dict[int, str]  # part number -> signed PUT URL
    received: frozenset[int] = frozenset()
    etags: dict[int, str] | None = None  # ETags the server reports for received parts


@dataclass(frozen=True, slots=True)
class BlobUrl:
    url: str
    size: int
    expires: int


def _bad(what: str) -> ServerError:
    return ServerError(
        ClientCode.BAD_RESPONSE,
        f"the server's answer about an attachment is malformed ({what}); "
        "check that the server runs a compatible Porch version",
    )


def _int(body: Any, name: str, low: int, high: int) -> int:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"{name} missing or out of range")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL_CHARS:
        raise _bad("a URL missing or too long")
    return value


def _parts(body: Any, field: str) -> dict[int, str]:
    items = body.get(field, []) if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) > MAX_PARTS:
        raise _bad(f"{field} is not a list of at most {MAX_PARTS}")
    return {_int(p, "n", 1, MAX_PARTS): _url(p.get("url")) for p in items}


def _slot(body: Any) -> Slot:
    received: set[int] = set()
    etags: dict[int, str] = {}
    for item in body.get("received", []) if isinstance(body, dict) else []:
        # A list of part numbers (spec §6), or of {"n", "etag"} if the server reports ETags.
        if isinstance(item, dict):
            n = _int(item, "n", 1, MAX_PARTS)
            if isinstance(item.get("etag"), str):
                etags[n] = item["etag"]
        elif isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= MAX_PARTS:
            n = item
        else:
            raise _bad("received lists an invalid part")
        received.add(n)
    return Slot(
        str(body.get("id")),
        _int(body, "part_size", 1, MAX_PART_BYTES),
        _parts(body, "parts"),
        frozenset(received),
        etags,
    )


class MediaApi:
    """POST/GET /v1/media/... on top of an HttpApi (its auth and its error mapping)."""

    def __init__(self, api: HttpApi) -> None:
        self._api = api

    @property
    def base_url(self) -> httpx.URL:
        return self._api.base_url

    async def create_upload(self, blob_bytes: int, recipients: int | None) -> Slot:
        request: dict[str, int] = {"size": blob_bytes}
        if recipients is not None:
            request["recipients"] = max(1, min(recipients, 5000))
        return _slot(await self._api.request("POST", "/v1/media/uploads", request))

    async def upload_status(self, media_id: str) -> Slot:
        return _slot(await self._api.request("GET", f"/v1/media/uploads/{media_id}"))

    async def abandon(self, media_id: str) -> None:
        """Give the unfinished upload up (its parts go); one already gone is fine."""
        try:
            await self._api.request("DELETE", f"/v1/media/uploads/{media_id}")
        except ServerError as exc:
            if exc.code not in ("media_not_found", "media_upload_done"):
                raise

    async def complete(self, media_id: str, etags: dict[int, str]) -> int:
        """Finish the upload; returns the blob's expiry (ms)."""
        parts = [{"n": n, "etag": etag} for n, etag in sorted(etags.items())]
        body = await self._api.request(
            "POST", f"/v1/media/uploads/{media_id}/complete", {"parts": parts}
        )
        return _int(body, "expires", 0, 2**53 - 1)

    async def blob_url(self, media_id: str) -> BlobUrl:
        body = await self._api.request("GET", f"/v1/media/{media_id}")
        return BlobUrl(
            _url(body.get("url")), _int(body, "size", 0, 2**53 - 1), _int(body, "expires", 0, 2**63)
        )
