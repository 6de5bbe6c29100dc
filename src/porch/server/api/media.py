"""Attachment blobs over HTTP (spec §6; docs/protocol.md, "Media").

The slot routes need device credentials. The part PUT and blob GET are the filesystem
backend's signed URLs: no credentials, the signature is the capability. Their bodies stream:
a part goes to disk in bounded chunks as it arrives (BodyLimitMiddleware lets this one path
through: it enforces the part's own length), a blob goes out as a file response with Range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import ClientDisconnect

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.api.byte_range import Unsatisfiable, parse_range
from porch.server.api.deps import PrincipalDep, Services, ServicesDep
from porch.server.media.layout import MAX_PARTS, MEDIA_ID_RE
from porch.server.services.media import UploadSlot, not_found
from porch.server.services.media_local import LocalMedia

router = APIRouter(prefix="/v1/media", tags=["media"])

PART_PREFIX = "/v1/media/parts/"  # exempt from the request body limit (app.py)
MAX_WIRE_INT = 2**53 - 1
MediaId = Annotated[str, Path(pattern=MEDIA_ID_RE.pattern)]
# The signed routes parse their own parameters, each bounded there (valid_media_id, _number's
# 18 digits, the signature's pattern; the whole request head by PORCH_MAX_HEADER_BYTES): any
# malformed URL, a too long one included, is 403 media_url_invalid, never a validation 400.
RawId = Annotated[str, Path()]
RawPart = Annotated[str, Path()]
Expiry = Annotated[str, Query(alias="exp")]
Sig = Annotated[str, Query()]


class _Body(BaseModel):
    # Strict: "5" or true is not a size, 1 is not an etag (no coercion anywhere in a body).
    model_config = ConfigDict(extra="forbid", strict=True)


class UploadIn(_Body):
    size: Annotated[int, Field(ge=1, le=MAX_WIRE_INT)]
    recipients: Annotated[int, Field(ge=1, le=5000)] | None = None


class PartUrlOut(BaseModel):
    n: int
    url: str


class SlotOut(BaseModel):
    id: str
    size: int
    part_size: int
    parts: list[PartUrlOut]
    received: list[int]
    expires: int
    slot_expires: int


class PartIn(_Body):
    n: Annotated[int, Field(ge=1, le=MAX_PARTS)]
    etag: Annotated[str, Field(min_length=1, max_length=128)]


class CompleteIn(_Body):
    parts: Annotated[list[PartIn], Field(max_length=MAX_PARTS)]

    @field_validator("parts")
    @classmethod
    def _distinct(cls, parts: list[PartIn]) -> list[PartIn]:
        if len({p.n for p in parts}) != len(parts):
            raise ValueError("each part number at most once")
        return parts


class BlobOut(BaseModel):
    id: str
    size: int
    expires: int


class DownloadOut(BaseModel):
    url: str
    size: int
    expires: int


def _slot(slot: UploadSlot) -> SlotOut:
    return SlotOut(
        id=slot.id,
        size=slot.size,
        part_size=slot.part_size,
        parts=[PartUrlOut(n=p.n, url=p.url) for p in slot.parts],
        received=list(slot.received),
        expires=slot.expires,
        slot_expires=slot.slot_expires,
    )


@router.post("/uploads", status_code=201, response_model=SlotOut)
async def create_upload(body: UploadIn, who: PrincipalDep, svc: ServicesDep) -> SlotOut:
    """A slot for `size` blob (ciphertext) bytes: a signed URL per part."""
    return _slot(await svc.media.create_upload(who, body.size, body.recipients))


@router.get("/uploads/{media_id}", response_model=SlotOut)
async def upload_status(media_id: MediaId, who: PrincipalDep, svc: ServicesDep) -> SlotOut:
    """The parts received so far, and fresh URLs for the missing ones (resume)."""
    return _slot(await svc.media.upload_status(who, media_id))


@router.delete("/uploads/{media_id}", status_code=204)
async def abandon_upload(media_id: MediaId, who: PrincipalDep, svc: ServicesDep) -> Response:
    """Give an unfinished upload up: its parts and its slot go (it is no longer pending)."""
    await svc.media.abandon_upload(who, media_id)
    return Response(status_code=204)


@router.post("/uploads/{media_id}/complete", response_model=BlobOut)
async def complete(
    media_id: MediaId, body: CompleteIn, who: PrincipalDep, svc: ServicesDep
) -> BlobOut:
    stored = await svc.media.complete(who, media_id, [(p.n, p.etag) for p in body.parts])
    return BlobOut(id=stored.id, size=stored.size, expires=stored.expires)


@router.get("/{media_id}", response_model=DownloadOut)
async def download(media_id: MediaId, who: PrincipalDep, svc: ServicesDep) -> DownloadOut:
    """A short-lived signed URL for the blob."""
    grant = await svc.media.download(who, media_id)
    return DownloadOut(url=grant.url, size=grant.size, expires=grant.expires)


def _number(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else -1


@router.put("/parts/{media_id}/{n}")
async def put_part(
    media_id: RawId, n: RawPart, request: Request, svc: ServicesDep, exp: Expiry = "", sig: Sig = ""
) -> Response:
    """One part's bytes (filesystem backend), streamed to disk at the part's offset."""
    local = _local(svc)
    declared = request.headers.get("content-length")
    length = None if declared is None else _number(declared)
    if length == -1:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "Content-Length is not a number")
    etag = await local.receive_part(media_id, _number(n), _number(exp), sig, length, _body(request))
    return Response(status_code=200, headers={"ETag": etag})


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that goes away mid-part just ends it early
    (the part is then too short and not counted), rather than raising past the service."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        return


@router.api_route("/blobs/{media_id}", methods=["GET", "HEAD"])
async def get_blob(
    media_id: RawId, request: Request, svc: ServicesDep, exp: Expiry = "", sig: Sig = ""
) -> Response:
    """The blob (filesystem backend); one Range is answered 206, HEAD with headers only."""
    blob = await _local(svc).open_blob(media_id, _number(exp), sig)
    wanted = parse_range(request.headers.get("range"), blob.size)
    if isinstance(wanted, Unsatisfiable):
        raise ProtocolError(
            ErrorCode.RANGE_NOT_SATISFIABLE,
            f"the range starts past the end of this {blob.size}-byte attachment",
            size=blob.size,
        )
    # FileResponse reads Range from the request itself: hand it only the canonical range
    # decided above, so that none of its own plain-text errors can be reached.
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"range"]
    if wanted is not None:
        headers.append((b"range", wanted.header().encode("ascii")))
    request.scope["headers"] = headers
    return FileResponse(
        blob.path,
        media_type="application/octet-stream",
        headers={"Cache-Control": "private, no-store"},
    )


def _local(svc: Services) -> LocalMedia:
    if svc.local_media is None:  # the S3 backend: its URLs point at the object store
        raise not_found()
    return svc.local_media
