"""The Client's attachment methods: send_file and download (spec §5; docs/design.md,
"Attachment transfers").

A mixin of porch.client.client.Client, kept apart so that the client module stays about its
connection, outbox and messages; the attributes below are the Client's. The transfer engine
lives in media_upload (slot, parts, retries), media_download (fetch, verify, then decrypt) and
media_blob (the ciphertext of a file from any offset).
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from porch.client.core.context import now_ms
from porch.client.errors import ClientCode, ClientError, ProfileError, UsageError
from porch.client.group_info import GROUP_PEER_PREFIX
from porch.client.media_api import MediaApi
from porch.client.media_blob import BlobSource
from porch.client.media_download import fetch
from porch.client.media_http import human_size, signed_url_client
from porch.client.media_names import reserve_name
from porch.client.media_store import downloaded, record_download
from porch.client.media_upload import upload
from porch.client.outgoing import check_length
from porch.crypto.attachment import MAX_ATTACHMENT_SIZE, new_key

if TYPE_CHECKING:
    from porch.client.api import HttpApi
    from porch.client.groups import Groups
    from porch.client.store import LocalStore
    from porch.client.transport import Transport
    from porch.client.waiters import SendResult
    from porch.crypto.content import Attachment, Encodable, Quote, Text

Progress = Callable[[int, int], None]

DOWNLOADS_DIR = "downloads"


class MediaMixin:
    if TYPE_CHECKING:
        api: HttpApi
        groups: Groups
        profile_dir: Path
        _store: LocalStore
        _transport: Transport

        @property
        def account_id(self) -> str: ...
        @property
        def device_id(self) -> int: ...
        async def conversation(self, peer: str) -> str: ...
        def new_text(
            self,
            peer: str,
            body: str,
            *,
            attachments: tuple[Attachment, ...] = (),
            reply: Quote | None = None,
            forwarded: bool = False,
        ) -> Text: ...
        async def send_content(
            self,
            peer: str,
            content: Encodable,
            *,
            ttl: int | None = None,
            wait: bool = True,
            timeout: float | None = 30.0,
        ) -> SendResult: ...

    @property
    def downloads_dir(self) -> Path:
        """Where attachments are saved unless the caller says otherwise."""
        return self.profile_dir / DOWNLOADS_DIR

    async def send_file(
        self,
        to: str,
        path: Path | str,
        *,
        caption: str | None = None,
        voice: bool = False,
        progress: Progress | None = None,
        wait: bool = True,
        timeout: float | None = 30.0,
    ) -> SendResult:
        """Prepare (strip metadata, thumbnail), encrypt, upload and send one file to ``to``
        (+NUMBER, @USERNAME, an account id or "g:<group id>"). Nothing is sent unless the
        upload completed; with wait, returns once the server acknowledged the message."""
        caption = caption or ""
        check_length(caption)  # before the upload, not after it
        # Here, not at the top: Pillow is slow to import, and most commands never need it.
        from porch.client.media_prep import prepare
        from porch.crypto.content import Attachment

        peer = await self.conversation(to)
        with tempfile.TemporaryDirectory(prefix=".send-", dir=self.profile_dir) as work:
            # Pillow and the file reads are CPU and disk work: off the event loop.
            prepared = await asyncio.to_thread(prepare, Path(path), Path(work), voice=voice)
            if prepared.size > MAX_ATTACHMENT_SIZE:  # the wire bound (spec §1)
                raise UsageError(
                    f"{prepared.name} is {human_size(prepared.size)}; no attachment can be "
                    f"larger than {human_size(MAX_ATTACHMENT_SIZE)}"
                )
            key = new_key()
            source = BlobSource(prepared.path, prepared.size, key)
            try:
                async with signed_url_client(self._transport.http_transport()) as http:
                    done = await upload(
                        MediaApi(self.api),
                        http,
                        source,
                        recipients=self._recipient_devices(peer),
                        progress=_in_file_bytes(progress, prepared.size),
                    )
            finally:
                source.close()
        pointer = Attachment(
            id=done.media_id,
            key=key,
            digest=done.digest,
            size=prepared.size,
            content_type=prepared.content_type,
            name=prepared.name,
            width=prepared.width,
            height=prepared.height,
            duration_ms=prepared.duration_ms,
            thumbnail=prepared.thumbnail,
            blurhash=prepared.blurhash,
            voice=prepared.voice,
        )
        text = self.new_text(peer, caption, attachments=(pointer,))
        return await self.send_content(peer, text, wait=wait, timeout=timeout)

    async def download(
        self,
        attachment: Attachment,
        *,
        peer: str,
        client_id: str,
        dest_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Save the attachment of message ``client_id`` in conversation ``peer``; returns its
        path. The ciphertext is verified (digest and MAC) before any plaintext is written; a
        second call returns the file saved the first time."""
        existing = downloaded(self._store, attachment)
        dest = Path(dest_dir) if dest_dir is not None else self.downloads_dir
        if existing is not None and (
            dest_dir is None or dest.resolve() == existing.parent.resolve()
        ):
            return existing
        if existing is not None:  # saved already, elsewhere: a copy where it is asked for
            try:
                return await asyncio.to_thread(_copy_into, existing, attachment, dest)
            except OSError as exc:
                raise _disk_error(exc, dest) from None
        try:
            dest.mkdir(parents=True, exist_ok=True)
            async with signed_url_client(self._transport.http_transport()) as http:
                path = await fetch(
                    MediaApi(self.api),
                    http,
                    attachment,
                    dest,
                    progress=_in_file_bytes(progress, attachment.size),
                )
        except OSError as exc:
            raise _disk_error(exc, dest) from None
        record_download(self._store, attachment, path, peer, client_id, now_ms())
        return path

    def _recipient_devices(self, peer: str) -> int | None:
        """How many devices will download it (the server may delete the blob once they all
        did, spec §6): the devices this profile knows of, or None if it knows of none."""
        mine = sum(d.device_id != self.device_id for d in self._store.peer_devices(self.account_id))
        if peer.startswith(GROUP_PEER_PREFIX):
            group = self._store.get_group(peer[len(GROUP_PEER_PREFIX) :])
            others = [] if group is None else [m.account_id for m in group.members]
            accounts = [a for a in others if a != self.account_id]
        else:
            accounts = [peer]
        counts = [len(self._store.peer_devices(a)) for a in accounts]
        if not counts or 0 in counts:
            return None
        return sum(counts) + mine


def _copy_into(saved: Path, pointer: Attachment, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = reserve_name(dest, pointer)
    shutil.copyfile(saved, target)  # into the 0600 file reserve_name created
    return target


def _in_file_bytes(progress: Progress | None, size: int) -> Progress | None:
    """The engine counts blob bytes (a little more: iv, padding, MAC); callers see the
    file's own size, so a bar ends at the number the file manager shows."""
    if progress is None:
        return None
    report = progress

    def scaled(done: int, total: int) -> None:
        report(done * size // total if total else size, size)

    return scaled


def _disk_error(exc: OSError, dest: Path) -> ClientError:
    if exc.errno == errno.ENOSPC:
        free = shutil.disk_usage(dest).free if dest.exists() else 0
        return ClientError(
            f"the disk holding {dest} is full ({free:,} bytes free); free some space and "
            "download it again",
            code=ClientCode.DISK_FULL,
        )
    if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES):
        return ProfileError(
            f"cannot write to {dest} ({exc.strerror}); make it writable or choose another "
            "directory for downloads",
            code=ClientCode.PROFILE_READ_ONLY,
        )
    return ClientError(
        f"could not save the attachment in {dest} ({exc.strerror or exc})", code="download_failed"
    )
