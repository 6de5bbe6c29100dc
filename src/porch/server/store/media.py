"""Upload slots, blobs and their downloads: one text per query (sql.py, spec §6).

The quota and pending-slot checks and the insert are one transaction that first locks the
account's row (`{for_update}`), so concurrent slot requests of one account, on any node, are
counted one after the other and cannot together pass the quota.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from porch.server.store.media_records import (
    COMPLETE,
    UPLOADING,
    MediaQuotaExceeded,
    MediaRecord,
    TooManyPendingUploads,
)
from porch.server.store.sql import Op, SqlDomain, count, row, rows, value

MEDIA_COLS = (
    "id, account_id, device_id, size, part_size, upload, state, created, expires,"
    " recipients, downloads"
)
ACCOUNT_LOCK = "SELECT id FROM accounts WHERE id = ?{for_update}"
USED_SINCE = "SELECT COALESCE(SUM(size), 0) FROM media WHERE account_id = ? AND created > ?"
PENDING = "SELECT COUNT(*) FROM media WHERE account_id = ? AND state = ? AND expires > ?"
MEDIA_ADD = "INSERT INTO media (" + MEDIA_COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
MEDIA_SET_UPLOAD = "UPDATE media SET upload = ? WHERE id = ?"
MEDIA_GET = "SELECT " + MEDIA_COLS + " FROM media WHERE id = ?"
MEDIA_COMPLETE = (
    "UPDATE media SET state = ?, expires = ? WHERE id = ? AND state = ? RETURNING " + MEDIA_COLS
)
DOWNLOAD_ADD = (
    "INSERT INTO media_downloads (media_id, account_id, device_id) VALUES (?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
DOWNLOADS_UP = "UPDATE media SET downloads = downloads + 1 WHERE id = ?"
# Downloaded by every recipient device: the blob goes once the last URL handed out expires.
EARLY_EXPIRY = (
    "UPDATE media SET expires = ? WHERE id = ? AND recipients IS NOT NULL"
    " AND downloads >= recipients AND expires > ?"
)
# Abandoned by its uploader: the slot expires now (no longer pending; the sweep's if the bytes
# cannot be deleted at once). Only an unfinished slot: a completed blob is not abandoned.
MEDIA_ABANDON = (
    "UPDATE media SET expires = ? WHERE id = ? AND account_id = ? AND state = ? AND expires > ?"
)
EXPIRED = "SELECT " + MEDIA_COLS + " FROM media WHERE expires <= ? ORDER BY expires LIMIT ?"
DOWNLOADS_DELETE = "DELETE FROM media_downloads WHERE media_id = ?"
MEDIA_DELETE = "DELETE FROM media WHERE id = ?"


class SqlMediaStore(SqlDomain):
    async def create_media(
        self, record: MediaRecord, since: int, quota: int, max_pending: int
    ) -> None:
        def op() -> Op[None]:
            yield value(ACCOUNT_LOCK, record.account_id)
            used = int((yield value(USED_SINCE, record.account_id, since)))
            if used + record.size > quota:
                raise MediaQuotaExceeded(used)
            pending = yield value(PENDING, record.account_id, UPLOADING, record.created)
            if int(pending) >= max_pending:
                raise TooManyPendingUploads()
            yield count(
                MEDIA_ADD,
                record.id,
                record.account_id,
                record.device_id,
                record.size,
                record.part_size,
                record.upload,
                record.state,
                record.created,
                record.expires,
                record.recipients,
                record.downloads,
            )

        await self._write(op)

    async def set_media_upload(self, media_id: str, upload: str) -> None:
        await self._write(lambda: _run(MEDIA_SET_UPLOAD, upload, media_id))

    async def get_media(self, media_id: str) -> MediaRecord | None:
        def op() -> Op[MediaRecord | None]:
            found = yield row(MEDIA_GET, media_id)
            return None if found is None else _record(found)

        return await self._read(op)

    async def complete_media(self, media_id: str, expires: int) -> MediaRecord | None:
        def op() -> Op[MediaRecord | None]:
            found = yield row(MEDIA_COMPLETE, COMPLETE, expires, media_id, UPLOADING)
            return None if found is None else _record(found)

        return await self._write(op)

    async def count_download(
        self, media_id: str, account_id: str, device_id: int, early_expiry: int | None
    ) -> bool:
        def op() -> Op[bool]:
            if not (yield count(DOWNLOAD_ADD, media_id, account_id, device_id)):
                return False
            yield count(DOWNLOADS_UP, media_id)
            if early_expiry is not None:
                yield count(EARLY_EXPIRY, early_expiry, media_id, early_expiry)
            return True

        return await self._write(op)

    async def abandon_media(self, media_id: str, account_id: str, now: int) -> bool:
        def op() -> Op[bool]:
            return bool((yield count(MEDIA_ABANDON, now, media_id, account_id, UPLOADING, now)))

        return await self._write(op)

    async def expired_media(self, now: int, limit: int) -> list[MediaRecord]:
        def op() -> Op[list[MediaRecord]]:
            return [_record(r) for r in (yield rows(EXPIRED, now, limit))]

        return await self._read(op)

    async def delete_media(self, media_ids: Sequence[str]) -> int:
        def op() -> Op[int]:
            deleted = 0
            for media_id in media_ids:
                yield count(DOWNLOADS_DELETE, media_id)
                deleted += yield count(MEDIA_DELETE, media_id)
            return deleted

        return await self._write(op)


def _run(sql: str, *args: object) -> Op[None]:
    yield count(sql, *args)


def _record(r: Any) -> MediaRecord:
    return MediaRecord(
        id=str(r[0]),
        account_id=str(r[1]),
        device_id=int(r[2]),
        size=int(r[3]),
        part_size=int(r[4]),
        upload=str(r[5]),
        state=str(r[6]),
        created=int(r[7]),
        expires=int(r[8]),
        recipients=None if r[9] is None else int(r[9]),
        downloads=int(r[10]),
    )
