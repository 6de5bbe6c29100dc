"""The `downloads` table (spec §4, created by the client migration in rich_store.py): where
each downloaded attachment's plaintext was saved. Deleting a message (expiry, delete for
everyone) unlinks those files and rows (rich_store.py); this module adds and finds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from porch.client.store import LocalStore


def downloaded(store: LocalStore, media_id: str) -> Path | None:
    """The saved file of an attachment, if it was downloaded and the file is still there."""
    with store.transaction() as db:
        row = db.execute("SELECT path FROM downloads WHERE media_id = ?", (media_id,)).fetchone()
        if row is None:
            return None
        path = Path(row[0])
        if path.is_file():
            return path
        # Deleted by the user meanwhile: forget it, so the next download saves it again.
        db.execute("DELETE FROM downloads WHERE media_id = ?", (media_id,))
    return None


def record_download(
    store: LocalStore, media_id: str, path: Path, peer: str, client_id: str, now: int
) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO downloads (media_id, path, peer, client_id, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (media_id, str(path), peer, client_id, now),
        )
