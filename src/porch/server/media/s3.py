"""Blobs in an S3-compatible object store (AWS S3, SeaweedFS, MinIO): PORCH_MEDIA_BACKEND=s3.

Each slot is a multipart upload; each part URL is the store's own presigned UploadPart URL
and the download URL its presigned GetObject, so blob bytes never pass through Porch. The
presigned URLs name PORCH_S3_ENDPOINT, which must be the address clients reach the store at.
Received parts come from ListParts; completion checks every part's size there before
CompleteMultipartUpload, and the object's length after it. An unfinished slot is aborted
(AbortMultipartUpload) by the sweep, a blob deleted with DeleteObject. The bucket is created
at start-up if it is missing, and its CORS rules are checked then (s3_cors.py): browsers need
them to upload and download.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError

from porch.server.clock import Clock, SystemClock
from porch.server.lifecycle import Component
from porch.server.media.base import (
    BlobError,
    BlobMissing,
    PartsMismatch,
    ReceivedPart,
    check_parts,
)
from porch.server.media.layout import MIN_S3_PART_BYTES, valid_media_id
from porch.server.media.s3_cors import check_bucket_cors
from porch.server.settings import Settings

GONE = {"NoSuchUpload", "NoSuchKey", "NotFound", "404", "NoSuchBucket"}
LIST_PAGE = 1000  # ListParts' own maximum per call


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Blobs(Component):
    name = "s3"

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        clock: Clock | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._bucket = bucket
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock or SystemClock()
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Blobs:
        s = settings
        if not (s.s3_endpoint and s.s3_bucket and s.s3_access_key and s.s3_secret_key):
            raise ValueError(
                "PORCH_MEDIA_BACKEND=s3 needs PORCH_S3_ENDPOINT, PORCH_S3_BUCKET, "
                "PORCH_S3_ACCESS_KEY and PORCH_S3_SECRET_KEY"
            )
        if s.media_part_bytes < MIN_S3_PART_BYTES:
            raise ValueError(
                f"PORCH_MEDIA_PART_BYTES must be at least {MIN_S3_PART_BYTES} (5 MiB) with "
                "the S3 backend: S3 refuses smaller parts"
            )
        return cls(s.s3_endpoint, s.s3_bucket, s.s3_region, s.s3_access_key, s.s3_secret_key)

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        session = aioboto3.Session()
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        async with session.client(
            "s3",
            endpoint_url=self._endpoint,
            region_name=self._region,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=config,
        ) as client:
            self._client = client
            try:
                await self._ensure_bucket()
                await check_bucket_cors(client, self._bucket)
                yield
            finally:
                self._client = None

    async def _ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            if _code(exc) not in GONE:
                raise
            with contextlib.suppress(ClientError):  # created meanwhile by another node
                await self._client.create_bucket(Bucket=self._bucket)

    def _key(self, media_id: str) -> str:
        if not valid_media_id(media_id):
            raise BlobMissing(media_id)
        return media_id

    def _seconds(self, expires: int) -> int:
        return max(1, math.ceil((expires - self._clock.now_ms()) / 1000))

    async def create_upload(self, media_id: str, size: int, part_size: int) -> str:
        answer = await self._client.create_multipart_upload(
            Bucket=self._bucket, Key=self._key(media_id), ContentType="application/octet-stream"
        )
        return str(answer["UploadId"])

    async def part_url(self, media_id: str, upload: str, n: int, length: int, expires: int) -> str:
        params = {
            "Bucket": self._bucket,
            "Key": self._key(media_id),
            "UploadId": upload,
            "PartNumber": n,
        }
        url = await self._client.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=self._seconds(expires)
        )
        return str(url)

    async def received_parts(self, media_id: str, upload: str) -> list[ReceivedPart]:
        parts: list[ReceivedPart] = []
        marker = 0
        while True:
            try:
                page = await self._client.list_parts(
                    Bucket=self._bucket,
                    Key=self._key(media_id),
                    UploadId=upload,
                    MaxParts=LIST_PAGE,
                    PartNumberMarker=marker,
                )
            except ClientError as exc:
                if _code(exc) in GONE:
                    raise BlobMissing(media_id) from None
                raise
            for p in page.get("Parts", []):
                parts.append(ReceivedPart(int(p["PartNumber"]), str(p["ETag"]), int(p["Size"])))
            if not page.get("IsTruncated") or not page.get("Parts"):
                return parts
            marker = int(page["NextPartNumberMarker"])

    async def complete(
        self,
        media_id: str,
        upload: str,
        parts: Sequence[tuple[int, int]],
        etags: Mapping[int, str],
    ) -> None:
        key = self._key(media_id)
        try:
            received = await self.received_parts(media_id, upload)
        except BlobMissing:
            if await self._exists(key):
                return  # completed before (a retried request)
            raise
        missing = check_parts(received, parts, etags)
        if missing:
            raise PartsMismatch(missing)
        held = {p.n: p.etag for p in received}
        listed = [{"PartNumber": n, "ETag": held[n]} for n, _ in parts]
        try:
            await self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": listed}
            )
        except ClientError as exc:
            if _code(exc) in GONE and await self._exists(key):
                return
            raise BlobError(f"the object store refused the completion ({_code(exc)})") from None
        head = await self._client.head_object(Bucket=self._bucket, Key=key)
        if int(head["ContentLength"]) != sum(length for _, length in parts):
            await self._client.delete_object(Bucket=self._bucket, Key=key)
            raise PartsMismatch([n for n, _ in parts])

    async def _exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in GONE:
                return False
            raise
        return True

    async def download_url(self, media_id: str, expires: int) -> str:
        url = await self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": self._key(media_id)},
            ExpiresIn=self._seconds(expires),
        )
        return str(url)

    async def delete(self, media_id: str, upload: str | None) -> None:
        key = self._key(media_id)
        if upload:
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload
                )
            except ClientError as exc:
                if _code(exc) not in GONE:
                    raise
        await self._client.delete_object(Bucket=self._bucket, Key=key)  # gone already: fine
