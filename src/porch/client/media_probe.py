"""Duration and dimensions of audio and video files, read by pure-Python parsers.

mutagen reads the duration of the audio formats people send (Ogg Opus/Vorbis, MP3, M4A/MP4,
FLAC, WAV, ...); hachoir reads a video's width, height and duration (MP4/MOV, Matroska/WebM,
AVI, ...). Either may fail on a file it does not understand: the result is then empty, never an
error (spec §2: metadata never fails a send).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import mutagen
from hachoir.core import config as hachoir_config
from hachoir.metadata import extractMetadata
from hachoir.parser import createParser

AV_PREFIXES: Final = ("audio/", "video/")
# Bounds of the pointer's "w"/"h" and "duration" (docs/protocol.md, "Content object").
MAX_DIMENSION: Final = 65_535
MAX_DURATION_MS: Final = 2**53 - 1

# hachoir prints its parser warnings (which can name the file) to the terminal by default.
hachoir_config.quiet = True


@dataclass(frozen=True)
class AvProbe:
    duration_ms: int | None = None
    width: int | None = None
    height: int | None = None


def _duration_ms(seconds: float | None) -> int | None:
    if seconds is None or not 0 <= seconds * 1000 <= MAX_DURATION_MS:
        return None  # also NaN and infinity, which fail every comparison
    return round(seconds * 1000)


def _dimension(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DIMENSION:
        return value
    return None


def _mutagen_seconds(path: Path) -> float | None:
    try:
        found = mutagen.File(path)
        length = getattr(getattr(found, "info", None), "length", None)
    # mutagen raises its own MutagenError, but also struct/index errors on odd files.
    except Exception:
        return None
    return float(length) if isinstance(length, int | float) and length > 0 else None


def _hachoir(path: Path) -> tuple[float | None, int | None, int | None]:
    try:
        parser = createParser(str(path))
        if parser is None:
            return None, None, None
        with parser:
            metadata = extractMetadata(parser)
        if metadata is None:
            return None, None, None
        # hachoir's get() raises for a missing key unless given a non-None default.
        duration, width, height = (
            metadata.get(key) if metadata.has(key) else None
            for key in ("duration", "width", "height")
        )
    except Exception:  # hachoir's parsers raise many types on malformed input
        return None, None, None
    seconds = duration.total_seconds() if isinstance(duration, datetime.timedelta) else None
    return seconds, _dimension(width), _dimension(height)


def probe_av(path: Path, *, video: bool) -> AvProbe:
    """What the parsers read from ``path``; every field None where none of them could.

    ``video``: the file's type says video, so its dimensions are worth a second parser.
    """
    seconds = _mutagen_seconds(path)
    width = height = None
    if seconds is None or video:
        fallback, width, height = _hachoir(path)
        seconds = seconds if seconds is not None else fallback
    return AvProbe(duration_ms=_duration_ms(seconds), width=width, height=height)
