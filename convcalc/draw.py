"""Draw one unit's receptive field on a photograph (Pillow), so a person sees what it sees.

The photo is resized to the spec's input size (what the network reads), then enlarged by an
integer `zoom` for display. Pixel i covers [i, i + 1) on its axis, so a region [start, end]
in pixel indices is the box [start, end + 1) and its centre c sits at c + 1/2. Parts of the
field outside the image (the zero padding) are drawn on a hatched margin; the image outside
the field is dimmed; the centre is a cross in a ring.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from convcalc.files import write_whole
from convcalc.receptive import Region

FIELD = (255, 200, 0)
CENTRE = (255, 60, 60)
OUTLINE = (0, 0, 0)
PADDING = (70, 70, 70)
HATCH = (95, 95, 95)
CAPTION_BG = (20, 20, 20)
TEXT = (235, 235, 235)


def display_zoom(height: int, width: int, target: int = 480) -> int:
    """The smallest integer zoom that makes the longer side at least `target` pixels."""
    return max(1, math.ceil(target / max(height, width)))


def draw_field(photo: Image.Image, size: tuple[int, int], region: Region, caption: list[str],
               zoom: int | None = None) -> Image.Image:
    """photo, resized to `size` = (height, width), with `region` drawn on it (RGB)."""
    height, width = size
    zoom = zoom or display_zoom(height, width)
    seen = photo.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    (top, left), (bottom, right) = _margins(region, size)
    canvas = Image.new("RGB", ((width + left + right) * zoom, (height + top + bottom) * zoom),
                       PADDING)
    _hatch(canvas, zoom * 6)
    scaled = seen.resize((width * zoom, height * zoom), Image.Resampling.NEAREST)
    canvas.paste(_dimmed_outside(scaled, region, zoom), (left * zoom, top * zoom))

    def at(y, x):  # pixel-index coordinates (y, x) -> canvas (X, Y)
        return (float(x) + left) * zoom, (float(y) + top) * zoom

    draw = ImageDraw.Draw(canvas)
    x0, y0 = at(region.start[0], region.start[1])
    x1, y1 = at(region.end[0] + 1, region.end[1] + 1)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=FIELD, width=max(2, zoom))
    cx, cy = at(region.centre[0] + 0.5, region.centre[1] + 0.5)
    arm = max(8, 4 * zoom)
    for colour, line_width in ((OUTLINE, max(4, zoom + 2)), (CENTRE, max(2, zoom // 2 + 1))):
        draw.line((cx - arm, cy, cx + arm, cy), fill=colour, width=line_width)
        draw.line((cx, cy - arm, cx, cy + arm), fill=colour, width=line_width)
        draw.ellipse((cx - arm, cy - arm, cx + arm, cy + arm), outline=colour, width=line_width - 1)
    if top or left or bottom or right:  # the image's edge, where the padding begins
        draw.rectangle(at(0, 0) + tuple(v - 1 for v in at(height, width)), outline=TEXT)
    return _with_caption(canvas, caption)


def _margins(region: Region, size: tuple[int, int]):
    """How far the field reaches beyond each side, in input pixels (capped at the image)."""
    before = tuple(min(n, max(0, math.ceil(-s))) for s, n in zip(region.start, size))
    after = tuple(min(n, max(0, math.ceil(e - (n - 1)))) for e, n in zip(region.end, size))
    return before, after


def _hatch(canvas: Image.Image, spacing: int) -> None:
    draw = ImageDraw.Draw(canvas)
    w, h = canvas.size
    for k in range(-h, w, max(4, spacing)):
        draw.line((k, 0, k + h, h), fill=HATCH, width=1)


def _dimmed_outside(scaled: Image.Image, region: Region, zoom: int) -> Image.Image:
    """The image at 35% brightness except the pixels inside the field."""
    out = ImageEnhance.Brightness(scaled).enhance(0.35)
    if not region.empty:
        (fy, fx), (ly, lx) = region.first, region.last
        box = (fx * zoom, fy * zoom, (lx + 1) * zoom, (ly + 1) * zoom)
        out.paste(scaled.crop(box), box[:2])
    return out


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _with_caption(canvas: Image.Image, lines: list[str]) -> Image.Image:
    font = _font(15)
    line_height = 20
    out = Image.new("RGB", (canvas.width, canvas.height + 10 + line_height * len(lines)),
                    CAPTION_BG)
    out.paste(canvas, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((8, canvas.height + 6 + i * line_height), line, fill=TEXT, font=font)
    return out


def save_atomic(image: Image.Image, path: Path) -> None:
    """Write the picture whole (convcalc.files.write_whole)."""
    write_whole(Path(path), lambda stream: image.save(stream, format=_format(Path(path))))


def _format(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP"}.get(ext, "PNG")
