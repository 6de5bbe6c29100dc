"""A camera that films a QR code, for the browser tests of QR scanning: Chromium's fake video
capture device plays a YUV4MPEG2 file (`--use-file-for-fake-video-capture`), and this module
writes one whose frames show a QR code (drawn with segno, Porch's own QR encoder) big, dark on
a white frame with the quiet zone the QR specification asks for."""

from __future__ import annotations

from pathlib import Path

import segno

WIDTH, HEIGHT = 640, 480  # a webcam's usual frame; even sides, as 4:2:0 chroma needs
FRAMES = 3  # a few identical frames: Chromium plays the file in a loop
QUIET_ZONE = 4  # modules of light border (ISO/IEC 18004)
# Video levels (BT.601 "studio swing"), the range Chromium reads a Y plane in.
BLACK, WHITE = 16, 235
NEUTRAL_CHROMA = 128  # U and V of a grey pixel


def qr_frame(content: str | bytes) -> bytes:
    """The Y plane (one byte per pixel, row by row) of a white frame with the QR code of
    `content` (text as UTF-8, bytes in byte mode as they are) in the middle, as large as the
    frame's height allows."""
    mode = "byte" if isinstance(content, bytes) else None
    matrix = segno.make(content, micro=False, error="m", mode=mode).matrix
    modules = len(matrix) + 2 * QUIET_ZONE
    scale = HEIGHT * 9 // 10 // modules  # nine tenths of the height, whole pixels a module
    side = modules * scale
    left, top = (WIDTH - side) // 2, (HEIGHT - side) // 2
    plane = bytearray([WHITE]) * (WIDTH * HEIGHT)
    for r, row in enumerate(matrix):
        line = bytearray()
        for dark in row:
            line += bytes([BLACK if dark else WHITE]) * scale
        x = left + QUIET_ZONE * scale
        for dy in range(scale):
            y = top + (QUIET_ZONE + r) * scale + dy
            plane[y * WIDTH + x : y * WIDTH + x + len(line)] = line
    return bytes(plane)


def write_y4m(path: Path, content: str | bytes) -> Path:
    """A YUV4MPEG2 file (4:2:0, 30 frames a second) of FRAMES frames that film the QR code of
    `content`; returns `path`. Chromium opens the file each time a page starts the camera, so
    a test may write it again between scans."""
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F30:1 Ip A1:1 C420\n".encode()
    chroma = bytes([NEUTRAL_CHROMA]) * ((WIDTH // 2) * (HEIGHT // 2))
    frame = b"FRAME\n" + qr_frame(content) + chroma + chroma
    path.write_bytes(header + frame * FRAMES)
    return path


def camera_args(video: Path) -> list[str]:
    """Chromium switches for a camera that plays `video`. The permission is not given by a
    switch (--use-fake-ui-for-media-stream would allow every page): a test gives it to a
    browser context (`permissions=["camera"]`), as a person allows it, and a context without
    it is refused as a person who said no."""
    return [
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
