"""Audio and video metadata read by mutagen and hachoir; unreadable files give no metadata."""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path

import pytest

from porch.client.media_prep import prepare
from porch.client.media_probe import AvProbe, probe_av

MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def minimal_mp4(width: int, height: int, timescale: int, duration: int) -> bytes:
    """ftyp + moov(mvhd, trak(tkhd)): the boxes that hold a video's duration and size."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = box(
        b"mvhd",
        struct.pack(">IIIII", 0, 0, 0, timescale, duration)
        + struct.pack(">IH", 0x10000, 0x100)
        + bytes(10)
        + MATRIX
        + bytes(24)
        + struct.pack(">I", 2),
    )
    tkhd = box(
        b"tkhd",
        struct.pack(">IIIIII", 3, 0, 0, 1, 0, duration)
        + bytes(8)
        + struct.pack(">hhhH", 0, 0, 0, 0)
        + MATRIX
        + struct.pack(">II", width << 16, height << 16),
    )
    return ftyp + box(b"moov", mvhd + box(b"trak", tkhd))


def test_video_duration_and_dimensions(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(minimal_mp4(640, 360, 600, 600 * 7 // 2))
    assert probe_av(source, video=True) == AvProbe(duration_ms=3500, width=640, height=360)

    prepared = prepare(source, tmp_path / "work")
    assert prepared.content_type == "video/mp4" and prepared.path == source
    assert (prepared.width, prepared.height, prepared.duration_ms) == (640, 360, 3500)


@pytest.mark.parametrize("seconds", [0.25, 61.0])
def test_audio_duration(tmp_path: Path, seconds: float) -> None:
    source = tmp_path / "voice.wav"
    with wave.open(str(source), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(4 * int(16000 * seconds)))
    assert probe_av(source, video=False) == AvProbe(duration_ms=round(seconds * 1000))


@pytest.mark.parametrize("name", ["broken.mp4", "broken.ogg", "broken.mkv"])
def test_garbage_gives_no_metadata_and_no_error(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(os.urandom(3000))
    assert probe_av(source, video=name.endswith(("mp4", "mkv"))) == AvProbe()
    prepared = prepare(source, tmp_path / "work")
    assert prepared.path == source and prepared.duration_ms is None


def test_an_audio_only_mp4_has_a_duration_but_no_dimensions(tmp_path: Path) -> None:
    source = tmp_path / "sound.mp4"
    source.write_bytes(minimal_mp4(0, 0, 1000, 1000))  # a sound track has a 0 x 0 frame
    assert probe_av(source, video=True) == AvProbe(duration_ms=1000)
