"""Where a downloaded attachment is saved: a safe, unused name in the downloads directory.

The name in a pointer is chosen by the sender, so it is untrusted: directories are stripped
(no "../../.bashrc"), control and bidi-override characters dropped (no hidden extensions), a
leading dot removed (no hidden files), and the length bounded. A name already taken gets
" (1)", " (2)", ... before its extension; the file is created with O_EXCL, so two downloads
never pick the same name.
"""

from __future__ import annotations

import mimetypes
import os
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from porch.crypto.content import Attachment

MAX_NAME_BYTES = 200  # below every common file system's 255, with room for " (123)"
MAX_DEDUPE = 10_000

# Types whose usual extension mimetypes guesses oddly or not at all.
_EXTENSIONS = {"image/jpeg": ".jpg", "audio/ogg": ".ogg", "text/plain": ".txt"}


def safe_name(name: str | None) -> str:
    """The pointer's name made safe for this file system, or "" if nothing usable is left."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    kept = kept.strip().lstrip(".").strip()
    if kept in ("", ".", ".."):
        return ""
    stem, dot, ext = kept.rpartition(".")
    if not dot or len(ext) > 16:
        stem, ext = kept, ""
    ext = f".{ext}" if ext else ""
    while len((stem + ext).encode()) > MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return (stem + ext) if stem else ""


def default_name(pointer: Attachment) -> str:
    """ "attachment-<id8>.<ext>" from the content type, for a pointer without a usable name."""
    kind = pointer.content_type.split(";", 1)[0].strip().lower()
    ext = _EXTENSIONS.get(kind) or mimetypes.guess_extension(kind) or ""
    return f"attachment-{pointer.id[:8]}{ext}"


def reserve_name(dest_dir: Path, pointer: Attachment) -> Path:
    """Create (empty, exclusively) and return the path the attachment will be saved at."""
    name = safe_name(pointer.name) or default_name(pointer)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    else:
        ext = "." + ext
    for n in range(MAX_DEDUPE):
        candidate = dest_dir / (name if n == 0 else f"{stem} ({n}){ext}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"{MAX_DEDUPE} files named like {name} already exist in {dest_dir}")
