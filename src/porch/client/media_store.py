"""The `downloads` table (spec §4): where each downloaded attachment's plaintext was saved.

Helper D's client migration creates the table; the statement here is the same one, so a
profile opened before that migration ran works too (IF NOT EXISTS: never a second table).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from porch.client.store import LocalStore

DOWNLOADS_TABLE = """CREATE TABLE IF NOT EXISTS downloads (
    media_id TEXT PRIMARY KEY, path TEXT NOT NULL, peer TEXT NOT NULL,
    client_id TEXT NOT NULL, created INTEGER NOT NULL)"""


def downloaded(store: LocalStore, media_id: str) -> Path | None:
    """The saved file of an attachment, if it was downloaded and the file is still there."""
    with store.transaction() as db:
        db.execute(DOWNLOADS_TABLE)
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
        db.execute(DOWNLOADS_TABLE)
        db.execute(
            "INSERT OR REPLACE INTO downloads (media_id, path, peer, client_id, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (media_id, str(path), peer, client_id, now),
        )
