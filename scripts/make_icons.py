"""Draw the installable app's icons (jobchat/web/static/icons/*.png) with Pillow.

The PNGs are committed; this script is their source. Run it again after changing the drawing:

    .venv/bin/python scripts/make_icons.py

The mark is favicon.svg's: a white speech bubble on the brand blue (app.css: --brand). Drawn at
4x and scaled down, so the curves are smooth without an SVG renderer.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = (0x24, 0x57, 0xC5, 255)  # app.css --brand (light)
WHITE = (255, 255, 255, 255)
ICONS = Path(__file__).resolve().parent.parent / "jobchat" / "web" / "static" / "icons"
SUPERSAMPLE = 4


def _bubble(draw: ImageDraw.ImageDraw, size: int, scale: float) -> None:
    """The speech bubble, centred, ``scale`` of the icon wide (favicon.svg's shape: a rounded
    box with a tail at its lower left)."""
    unit = size * scale / 20  # favicon.svg's bubble is 20 units wide (x 6..26 of 32)
    left = (size - 20 * unit) / 2
    top = (size - 16 * unit) / 2  # 16 units tall with the tail (y 10..26)
    radius = 2.4 * unit
    draw.rounded_rectangle(
        (left, top, left + 20 * unit, top + 12 * unit), radius=radius, fill=WHITE
    )
    # The tail: from the box's bottom edge down and back (favicon: h-9 l-5 4 v-4).
    draw.polygon(
        [
            (left + 4 * unit, top + 11 * unit),
            (left + 9.5 * unit, top + 11 * unit),
            (left + 4 * unit, top + 16 * unit),
        ],
        fill=WHITE,
    )


def icon(size: int, *, maskable: bool = False, rounded: bool = True) -> Image.Image:
    """``maskable``: the whole square is brand blue and the mark stays inside the 80 % safe
    zone a platform's mask may cut to. Otherwise a rounded square (``rounded``) with the mark
    larger; Apple rounds its icons itself, so the apple-touch-icon is a plain square."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable or not rounded:
        draw.rectangle((0, 0, big, big), fill=BRAND)
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 7 / 32, fill=BRAND)
    _bubble(draw, big, 0.5 if maskable else 0.625)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    outputs = {
        "icon-192.png": icon(192),
        "icon-512.png": icon(512),
        "maskable-512.png": icon(512, maskable=True),
        "apple-touch-icon.png": icon(180, rounded=False).convert("RGB"),
        # The small monochrome badge Android shows in the status bar: only its alpha counts.
        "badge-96.png": _badge(96),
    }
    for name, image in outputs.items():
        image.save(ICONS / name, optimize=True)
        print(f"wrote {ICONS / name} ({image.width}x{image.height})")


def _badge(size: int) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    _bubble(ImageDraw.Draw(image), big, 0.8)
    return image.resize((size, size), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    main()
