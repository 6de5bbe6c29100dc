"""Preparing a file to attach: strip what a photo says about its owner, measure what a
receiver shows before downloading (docs/design.md, "Attachments: the cipher and media
preparation"; docs/security.md, "Attachment encryption and metadata stripping").

Images that Pillow decodes (JPEG, camera MPO as JPEG, PNG, WebP) are re-encoded in their own
format with the EXIF orientation applied and without EXIF (GPS included), XMP or comments —
only the ICC profile is kept, so colours do not shift. PNG stays lossless (identical pixels),
JPEG is written at quality 95. A GIF is sent as it is (re-encoding would lose its animation;
GIF carries no EXIF) but still gets its dimensions, thumbnail and blurhash. Audio and video
keep their duration (and a video its dimensions) where mutagen or hachoir reads them
(porch.client.media_probe). Every other file, and any image that fails to decode, is sent as a
plain file: preparing never fails a send for a file that exists and can be read.

CPU work and file I/O: callers run :func:`prepare` in a thread.
"""

from __future__ import annotations

import io
import mimetypes
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import blurhash
from PIL import Image, ImageOps

from porch.client.errors import ClientCode, MediaError
from porch.client.media_probe import AV_PREFIXES, MAX_DIMENSION, probe_av

DEFAULT_TYPE: Final = "application/octet-stream"
# Decompression-bomb guard: a larger image is sent as a plain file, never decoded.
MAX_PIXELS: Final = 100_000_000
JPEG_QUALITY: Final = 95
WEBP_QUALITY: Final = 95
# What a receiver shows before it downloads (spec: Attachment "thumb" ≤ 16 KiB, "blurhash").
THUMB_SIDE: Final = 256
THUMB_MAX_BYTES: Final = 16 * 1024
THUMB_QUALITIES: Final = (85, 75, 65, 55, 45, 35, 25, 15)
BLURHASH_SIDE: Final = 64
BLURHASH_COMPONENTS: Final = (4, 3)
# Formats re-encoded without metadata; GIF is measured and sent unchanged (see above).
REENCODED: Final = frozenset({"JPEG", "PNG", "WEBP"})
MEASURED: Final = REENCODED | {"GIF", "MPO"}
# Many phone cameras write MPO: a JPEG followed by more pictures (depth, previews) that Pillow
# opens as "MPO". It is sent as the plain JPEG of its first picture, stripped like any JPEG.
AS_JPEG: Final = frozenset({"MPO"})


@dataclass(frozen=True)
class PreparedMedia:
    path: Path  # the file to upload: the original, or a stripped re-encode in workdir
    content_type: str
    name: str  # the original file's base name
    size: int  # bytes of `path`
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    thumbnail: bytes | None = field(default=None, repr=False)  # JPEG, side ≤ 256 px, ≤ 16 KiB
    blurhash: str | None = None  # 4x3 components, computed on a ≤ 64 px copy
    voice: bool = False


def prepare(path: Path, workdir: Path, *, voice: bool = False) -> PreparedMedia:
    """What to upload for ``path`` and what to put in its pointer.

    A re-encoded copy is a new file in ``workdir`` (``result.path != path``): the caller
    deletes it once uploaded. Raises MediaError ``media_unreadable`` when ``path`` is missing,
    a directory or unreadable, and ``media_workdir`` when the stripped copy cannot be written
    into ``workdir``.
    """
    path = Path(path)
    size = _readable_size(path)
    guessed = mimetypes.guess_type(path.name, strict=False)[0] or DEFAULT_TYPE
    prepared = _prepare_image(path, workdir, voice=voice)
    if prepared is not None:
        return prepared
    if guessed.startswith("image/"):
        # The extension says image but Pillow could not use it: a plain file (spec §2).
        guessed = DEFAULT_TYPE
    if voice or guessed.startswith(AV_PREFIXES):
        probe = probe_av(path, video=guessed.startswith("video/"))
    else:
        probe = None
    return PreparedMedia(
        path=path,
        content_type=guessed,
        name=path.name,
        size=size,
        width=probe.width if probe else None,
        height=probe.height if probe else None,
        duration_ms=probe.duration_ms if probe else None,
        voice=voice,
    )


def _readable_size(path: Path) -> int:
    try:
        if path.is_dir():
            raise MediaError(f"{path.name or path} is a directory; attach a file instead.")
        with path.open("rb") as stream:
            stream.read(1)
            return os.fstat(stream.fileno()).st_size
    except FileNotFoundError:
        raise MediaError(f"{path.name or path} does not exist; check the path.") from None
    except PermissionError:
        raise MediaError(
            f"{path.name or path} cannot be read (permission denied); check its permissions."
        ) from None
    except OSError as error:
        raise MediaError(
            f"{path.name or path} cannot be read ({error.strerror or type(error).__name__}); "
            "check the path."
        ) from None


def _open_image(path: Path) -> Image.Image | None:
    """The decoded first frame's image, or None when Pillow cannot or must not decode it."""
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own (lower) limit; ours is MAX_PIXELS, checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            if image.format not in MEASURED or image.width * image.height > MAX_PIXELS:
                image.close()
                return None
            image.load()
            return image
    # Pillow's plugins raise many types on malformed input (OSError, SyntaxError, struct.error,
    # ValueError, ...); whatever the reason, the file is then sent as a plain file (spec §2).
    except Exception:
        return None


def _prepare_image(path: Path, workdir: Path, *, voice: bool) -> PreparedMedia | None:
    image = _open_image(path)
    if image is None:
        return None
    with image:
        image_format = "JPEG" if image.format in AS_JPEG else str(image.format)
        content_type = Image.MIME.get(image_format, DEFAULT_TYPE)
        animated = image_format != "JPEG" and bool(getattr(image, "is_animated", False))
        try:
            # Orientation is applied to the pixels (the EXIF tag that said it is dropped);
            # an animation keeps its frames as they are.
            upright = image if animated else ImageOps.exif_transpose(image)
            thumbnail, blur = _thumbnail(upright), _blurhash(upright)
        except Exception:  # a decoder that fails late: plain file (see _open_image)
            return None
        if image_format in REENCODED:
            out = _reencode(upright, image_format, workdir, path.suffix, animated=animated)
            if out is None:
                return None
        else:
            out = path
        width, height = upright.size
        return PreparedMedia(
            path=out,
            content_type=content_type,
            name=path.name,
            size=out.stat().st_size,
            width=width if 1 <= width <= MAX_DIMENSION else None,
            height=height if 1 <= height <= MAX_DIMENSION else None,
            thumbnail=thumbnail,
            blurhash=blur,
            voice=voice,
        )


def _save_options(image: Image.Image, image_format: str, *, animated: bool) -> dict[str, Any]:
    # Everything written is named here: no exif=, no xmp=, no comment=, no pnginfo=.
    options: dict[str, Any] = {}
    icc = image.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if image_format == "JPEG":
        options["quality"] = JPEG_QUALITY
    elif image_format == "WEBP":
        options["quality"] = WEBP_QUALITY
    else:  # PNG is lossless by construction; keep a palette's or key colour's transparency
        if "transparency" in image.info:
            options["transparency"] = image.info["transparency"]
    if animated:
        # Frame durations and the loop count come from each frame as Pillow reads it.
        options["save_all"] = True
    return options


def _reencode(
    image: Image.Image, image_format: str, workdir: Path, suffix: str, *, animated: bool
) -> Path | None:
    """Write the stripped copy into workdir; None when Pillow cannot encode it (plain file)."""
    options = _save_options(image, image_format, animated=animated)
    # Pillow's JPEG encoder falls back on Image.info for the comment: the still copy saved
    # carries no info, so only `options` reach the file (EXIF and XMP are written only when
    # passed). An animation is saved from its frames; those formats take no such fallback.
    if animated:
        clean = image
    else:
        clean = image.copy()
        clean.info = {}
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="prepared-", suffix=suffix.lower(), dir=workdir)
    except OSError as error:
        raise _workdir_error(workdir, error) from None
    out = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            clean.save(stream, format=image_format, **options)
    except OSError as error:
        out.unlink(missing_ok=True)
        if error.errno is not None:  # the disk, not the image: say so, do not send unstripped
            raise _workdir_error(workdir, error) from None
        return None
    except Exception:  # Pillow cannot encode this mode in this format: plain file
        out.unlink(missing_ok=True)
        return None
    return out


def _workdir_error(workdir: Path, error: OSError) -> MediaError:
    return MediaError(
        f"cannot write the prepared copy into {workdir} ({error.strerror or 'error'}); "
        "free some space or check the profile directory's permissions.",
        code=ClientCode.MEDIA_WORKDIR,
    )


def _rgb(image: Image.Image) -> Image.Image:
    """An RGB copy; transparent areas become white, as a chat background shows them."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _thumbnail(image: Image.Image) -> bytes | None:
    small = _rgb(image)
    side = THUMB_SIDE
    while side >= 16:
        small.thumbnail((side, side))
        for quality in THUMB_QUALITIES:
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= THUMB_MAX_BYTES:
                return buffer.getvalue()
        side //= 2  # a very busy image: smaller, then try the qualities again
    return None


def _blurhash(image: Image.Image) -> str:
    small = _rgb(image)
    small.thumbnail((BLURHASH_SIDE, BLURHASH_SIDE))
    width, height = small.size
    raw = small.tobytes()  # RGB rows, 3 bytes a pixel: the [y][x][channel] blurhash reads
    row_bytes = width * 3
    rows = [
        [raw[y * row_bytes + x * 3 : y * row_bytes + x * 3 + 3] for x in range(width)]
        for y in range(height)
    ]
    components_x, components_y = BLURHASH_COMPONENTS
    return str(blurhash.encode(rows, components_x=components_x, components_y=components_y))
