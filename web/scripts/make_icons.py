"""Draws the PWA icons in web/public/ (committed PNGs; run again after changing the drawing):
    python3 web/scripts/make_icons.py
A porch: a roof over an open door, white on Porch green. The maskable icon keeps the drawing
inside the central 80 % circle that launchers may crop to (the W3C manifest's safe zone), with
the background to every edge; the plain icons have rounded corners of their own."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

GREEN = (31, 95, 79, 255)  # the manifest's theme_color, #1f5f4f
WHITE = (255, 255, 255, 255)
PUBLIC = Path(__file__).resolve().parents[1] / "public"
SCALE = 4  # drawn large and scaled down, for smooth edges


def draw(size: int, *, maskable: bool) -> Image.Image:
    big = size * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    if maskable:
        pen.rectangle((0, 0, big, big), fill=GREEN)
        inset = big * 0.2  # the drawing fits the 80 % safe circle
    else:
        pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=GREEN)
        inset = big * 0.16
    left, right = inset, big - inset
    top, bottom = inset * 1.05, big - inset
    width = right - left
    eave = top + width * 0.42
    # The roof: a wide triangle over the walls.
    pen.polygon([(big / 2, top), (right, eave), (left, eave)], fill=WHITE)
    # The walls, and the open door cut out of them in green.
    wall = width * 0.12
    pen.rectangle((left + wall, eave, right - wall, bottom), fill=WHITE)
    door = width * 0.17
    pen.rounded_rectangle(
        (big / 2 - door, eave + width * 0.16, big / 2 + door, bottom + 1),
        radius=door * 0.9,
        fill=GREEN,
        corners=(True, True, False, False),
    )
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    PUBLIC.mkdir(exist_ok=True)
    for name, size, maskable in [
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("icon-maskable-512.png", 512, True),
        ("apple-touch-icon.png", 180, True),  # iOS adds its own corners, so no transparency
    ]:
        draw(size, maskable=maskable).save(PUBLIC / name, optimize=True)


if __name__ == "__main__":
    main()
