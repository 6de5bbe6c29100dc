"""The `downloads` table (spec §4, created by the client migration in rich_store.py): where
each downloaded attachment's plaintext was saved. Deleting a message (expiry, delete for
everyone) unlinks those files and rows (rich_store.py); this module adds and finds them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from porch.client.store import LocalStore
    from porch.crypto.rich import Attachment

# Appended to store.MIGRATIONS: what pointer a saved file was verified against (M2-3).
DOWNLOADS_MIGRATION = ["ALTER TABLE downloads ADD COLUMN pointer TEXT"]


def pointer_hash(pointer: Attachment) -> str:
    """A hash of what the saved plaintext was checked against: the media id alone is not
    enough (anyone can send a pointer with a known id and another key, digest or size; the
    old file must not pass for that message's attachment). A hash, not the key itself: the
    downloads table is not sealed."""
    h = hashlib.sha256(b"porch-download-v1\0")
    h.update(pointer.id.encode() + b"\0" + pointer.key + pointer.digest)
    h.update(pointer.size.to_bytes(8, "big"))
    return h.hexdigest()


def downloaded(store: LocalStore, pointer: Attachment) -> Path | None:
    """The saved file of an attachment, if this very pointer (id, key, digest and size) was
    downloaded and the file is still there; otherwise the caller downloads and verifies it."""
    media_id = pointer.id
    with store.transaction() as db:
        row = db.execute(
            "SELECT path, pointer FROM downloads WHERE media_id = ?", (media_id,)
        ).fetchone()
        if row is None:
            return None
        if row[1] != pointer_hash(pointer):  # another pointer with the same id: verify anew
            return None
        path = Path(row[0])
        if path.is_file():
            return path
        # Deleted by the user meanwhile: forget it, so the next download saves it again.
        db.execute("DELETE FROM downloads WHERE media_id = ?", (media_id,))
    return None


def record_download(
    store: LocalStore, pointer: Attachment, path: Path, peer: str, client_id: str, now: int
) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO downloads (media_id, path, peer, client_id, created,"
            " pointer) VALUES (?, ?, ?, ?, ?, ?)",
            (pointer.id, str(path), peer, client_id, now, pointer_hash(pointer)),
        )
