"""Preparing files to attach: metadata stripped, orientation applied, thumbnails, blurhash."""

from __future__ import annotations

import io
import os
import struct
import wave
import zlib
from pathlib import Path

import blurhash
import pytest
from PIL import Image, ImageCms, ImageDraw, features

from porch.client.errors import ClientError, MediaError
from porch.client.media_prep import THUMB_MAX_BYTES, THUMB_SIDE, prepare

GPS_IFD = 0x8825
ORIENTATION = 0x0112
SECRET = b"Secret Street 12"


def gps_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x0131] = SECRET.decode()  # "Software": a string we can look for in the output
    exif[GPS_IFD] = {1: "N", 2: (37.0, 25.0, 19.2), 3: "W", 4: (122.0, 5.0, 3.1)}
    if orientation is not None:
        exif[ORIENTATION] = orientation
    return exif.tobytes()


def picture(width: int = 300, height: int = 200) -> Image.Image:
    """A red block in the stored image's top-left corner on blue: orientation is visible."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    ImageDraw.Draw(image).rectangle((0, 0, width // 3, height // 3), fill=(255, 0, 0))
    return image


def assert_stripped(out: Path) -> None:
    raw = out.read_bytes()
    assert b"Exif" not in raw and b"eXIf" not in raw
    assert SECRET not in raw and b"PhoneMaker" not in raw
    assert b"http://ns.adobe.com/xap" not in raw  # XMP
    with Image.open(out) as image:
        exif = image.getexif()
        assert dict(exif) == {}
        assert exif.get_ifd(GPS_IFD) == {}
        assert "comment" not in image.info and "exif" not in image.info


def test_jpeg_loses_exif_gps_comment_and_xmp(tmp_path: Path) -> None:
    source = tmp_path / "holiday.jpg"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/xap/1.0/">'
    picture().save(source, exif=gps_exif(), comment=SECRET, xmp=xmp + b"</rdf:RDF></x:xmpmeta>")
    raw = source.read_bytes()
    assert b"Exif" in raw and SECRET in raw  # the test image does carry them

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path.parent == tmp_path / "work" and prepared.path != source
    assert prepared.path.suffix == ".jpg"
    assert prepared.name == "holiday.jpg"
    assert prepared.content_type == "image/jpeg"
    assert prepared.size == prepared.path.stat().st_size
    assert (prepared.width, prepared.height) == (300, 200)
    assert_stripped(prepared.path)
    with Image.open(prepared.path) as out:
        assert out.format == "JPEG" and out.size == (300, 200)
    assert source.read_bytes() == raw  # the original is never touched


def test_a_camera_mpo_becomes_a_stripped_single_jpeg(tmp_path: Path) -> None:
    # Phone cameras write MPO (a JPEG with more pictures after it); Pillow opens it as "MPO".
    source = tmp_path / "IMG_0001.jpg"
    depth = Image.new("RGB", (300, 200), (0, 255, 0))
    picture().save(source, format="MPO", save_all=True, append_images=[depth], exif=gps_exif())
    with Image.open(source) as check:
        assert check.format == "MPO"

    prepared = prepare(source, tmp_path / "work")

    assert prepared.content_type == "image/jpeg" and prepared.path != source
    assert_stripped(prepared.path)
    with Image.open(prepared.path) as out:
        assert out.format == "JPEG" and getattr(out, "n_frames", 1) == 1


def test_orientation_6_is_applied_to_the_pixels(tmp_path: Path) -> None:
    source = tmp_path / "portrait.jpg"
    picture(300, 200).save(source, exif=gps_exif(orientation=6), quality=95)

    prepared = prepare(source, tmp_path / "work")

    assert (prepared.width, prepared.height) == (200, 300)
    with Image.open(prepared.path) as out:
        assert out.size == (200, 300)
        assert out.getexif().get(ORIENTATION) is None
        # Orientation 6 means "rotate 90° clockwise to show": the stored top-left corner
        # ends up top-right.
        red, _, blue = out.convert("RGB").getpixel((190, 10))
        assert red > 200 and blue < 60
        red, _, blue = out.convert("RGB").getpixel((10, 10))
        assert red < 60 and blue > 200
    assert_stripped(prepared.path)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_png_is_lossless_keeps_icc_and_loses_exif(tmp_path: Path, mode: str) -> None:
    base = Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3))
    if mode == "RGBA":
        base.putalpha(Image.frombytes("L", (64, 48), os.urandom(64 * 48)))
    original = base.convert(mode) if mode != "RGBA" else base
    source = tmp_path / "screen.png"
    icc = srgb_profile()
    original.save(source, exif=gps_exif(), icc_profile=icc)

    prepared = prepare(source, tmp_path / "work")

    assert prepared.content_type == "image/png"
    assert_stripped(prepared.path)
    with Image.open(source) as before, Image.open(prepared.path) as after:
        assert after.mode == before.mode
        assert after.tobytes() == before.tobytes()
        if mode == "P":
            assert after.getpalette() == before.getpalette()
        assert after.info.get("icc_profile") == icc


def test_webp_loses_exif(tmp_path: Path) -> None:
    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    source = tmp_path / "sticker.webp"
    picture().save(source, exif=gps_exif())
    assert b"EXIF" in source.read_bytes()

    prepared = prepare(source, tmp_path / "work")

    assert prepared.content_type == "image/webp"
    assert b"EXIF" not in prepared.path.read_bytes()
    assert_stripped(prepared.path)


def test_gif_is_sent_unchanged_with_its_measurements(tmp_path: Path) -> None:
    source = tmp_path / "loop.gif"
    frames = [picture(), picture().rotate(180)]
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=100, loop=0)

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path == source and prepared.content_type == "image/gif"
    assert (prepared.width, prepared.height) == (300, 200)
    assert prepared.thumbnail is not None and prepared.blurhash is not None


def test_animated_png_keeps_its_frames(tmp_path: Path) -> None:
    source = tmp_path / "anim.png"
    frames = [picture(), picture().rotate(180)]
    frames[0].save(
        source, save_all=True, append_images=frames[1:], duration=100, loop=0, exif=gps_exif()
    )
    assert SECRET in source.read_bytes()

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path != source
    assert_stripped(prepared.path)
    with Image.open(prepared.path) as out:
        assert getattr(out, "n_frames", 1) == 2


def test_thumbnail_fits_its_bounds_even_for_a_noisy_photo(tmp_path: Path) -> None:
    source = tmp_path / "noise.png"
    Image.frombytes("RGB", (1200, 900), os.urandom(1200 * 900 * 3)).save(source)

    prepared = prepare(source, tmp_path / "work")

    assert prepared.thumbnail is not None
    assert len(prepared.thumbnail) <= THUMB_MAX_BYTES
    with Image.open(io.BytesIO(prepared.thumbnail)) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= THUMB_SIDE
        assert thumb.size[0] > thumb.size[1]  # the aspect ratio survives
        assert dict(thumb.getexif()) == {}


def test_blurhash_has_4x3_components_and_the_image_colour(tmp_path: Path) -> None:
    source = tmp_path / "red.png"
    Image.new("RGB", (500, 400), (220, 20, 20)).save(source)

    prepared = prepare(source, tmp_path / "work")

    assert prepared.blurhash is not None
    assert len(prepared.blurhash) == 28  # 1 + 1 + 4 + 2 * (4 * 3 - 1)
    assert blurhash.components(prepared.blurhash) == (4, 3)
    pixel = blurhash.decode(prepared.blurhash, 4, 4)[2][2]
    assert pixel[0] > 180 and pixel[1] < 60 and pixel[2] < 60
    assert prepared.thumbnail is not None and len(prepared.thumbnail) < 2000


def test_a_decompression_bomb_is_sent_as_a_plain_file(tmp_path: Path) -> None:
    # A PNG whose header claims 20000 x 20000 pixels (400 MP); its data is a few bytes.
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 100)
    source = tmp_path / "bomb.png"
    source.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path == source
    assert prepared.content_type == "application/octet-stream"
    assert prepared.width is None and prepared.thumbnail is None
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_wav_gets_its_duration(tmp_path: Path) -> None:
    source = tmp_path / "note.wav"
    with wave.open(str(source), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(2 * 8000 * 3 // 2))  # 1.5 s

    prepared = prepare(source, tmp_path / "work", voice=True)

    assert prepared.duration_ms == 1500
    assert prepared.voice is True
    assert prepared.content_type in ("audio/x-wav", "audio/wav")
    assert prepared.path == source and prepared.width is None


def test_random_bytes_are_an_octet_stream(tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(5000))

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path == source and prepared.size == 5000
    assert prepared.content_type == "application/octet-stream"
    assert (prepared.width, prepared.duration_ms, prepared.thumbnail, prepared.blurhash) == (
        None,
        None,
        None,
        None,
    )


def test_a_text_file_keeps_its_type(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hello\n")
    assert prepare(source, tmp_path / "work").content_type == "text/plain"


@pytest.mark.parametrize(
    "content", [b"this is not a picture", b"\xff\xd8\xff\xe0" + os.urandom(200)]
)
def test_a_jpg_that_is_not_an_image_is_a_plain_file(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "fake.jpg"
    source.write_bytes(content)

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path == source and prepared.name == "fake.jpg"
    assert prepared.content_type == "application/octet-stream"
    assert prepared.thumbnail is None and prepared.width is None


def test_a_truncated_jpeg_is_a_plain_file(tmp_path: Path) -> None:
    whole = io.BytesIO()
    Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3)).save(whole, format="JPEG")
    source = tmp_path / "cut.jpg"
    source.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])

    prepared = prepare(source, tmp_path / "work")

    assert prepared.path == source and prepared.content_type == "application/octet-stream"


def test_missing_path_and_directory_are_media_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as missing:
        prepare(tmp_path / "nope.jpg", tmp_path / "work")
    assert missing.value.code == "media_unreadable"
    assert "nope.jpg does not exist" in str(missing.value)
    assert isinstance(missing.value, ClientError)
    with pytest.raises(MediaError) as directory:
        prepare(tmp_path, tmp_path / "work")
    assert directory.value.code == "media_unreadable" and "directory" in str(directory.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_media_error(tmp_path: Path) -> None:
    source = tmp_path / "locked.bin"
    source.write_bytes(b"x")
    source.chmod(0)
    with pytest.raises(MediaError) as caught:
        prepare(source, tmp_path / "work")
    assert caught.value.code == "media_unreadable" and "permission" in str(caught.value)


def test_an_unwritable_workdir_is_a_media_error_not_an_unstripped_send(tmp_path: Path) -> None:
    source = tmp_path / "holiday.jpg"
    picture().save(source, exif=gps_exif())
    blocker = tmp_path / "work"
    blocker.write_text("a file where the work dir should be")
    with pytest.raises(MediaError) as caught:
        prepare(source, blocker)
    assert caught.value.code == "media_workdir"
