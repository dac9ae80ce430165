"""Edits re-uploaders make to a thumbnail, one function each, deterministic from a generator."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from search.eval.samples import THUMBNAIL_SIZES, color_shift, hflip, jpeg_reencode

__all__ = [
    "BOX_SIZES",
    "EDITS",
    "backdrop",
    "border",
    "boxed",
    "crop_window",
    "draw_emoji",
    "draw_text",
    "grade",
    "heavy_jpeg",
    "light",
    "picture_in_picture",
    "rotate",
    "zoom",
]

Rng = np.random.Generator

#: Short names of the thumbnail sizes, as kind names use them (letterbox-mq, pillarbox-hq...).
BOX_SIZES: dict[str, tuple[int, int]] = {
    "default": THUMBNAIL_SIZES["default"],
    "mq": THUMBNAIL_SIZES["mqdefault"],
    "hq": THUMBNAIL_SIZES["hqdefault"],
    "sd": THUMBNAIL_SIZES["sddefault"],
    "maxres": THUMBNAIL_SIZES["maxresdefault"],
}
_ASPECT_TOLERANCE = 0.03  # a photo within 3 % of the size's aspect gets no bars
_CAPTIONS = ("WOW!", "OMG", "NEW", "PART 2", "SHOCKING", "4K", "LIVE", "FULL HD", "TOP 10",
             "WAIT FOR IT", "EPIC", "#1")


def boxed(image: Image.Image, size: tuple[int, int]) -> tuple[str, Image.Image] | None:
    """The whole image fitted into ``size`` with black bars: ("letterbox" or "pillarbox",
    image), or None when the aspects match and there would be no bars."""
    width, height = size
    ratio = (image.width / image.height) / (width / height)
    if abs(ratio - 1.0) <= _ASPECT_TOLERANCE:
        return None
    fitted = ImageOps.contain(image, size, method=Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return ("letterbox" if ratio > 1.0 else "pillarbox"), canvas


def crop_window(image: Image.Image, rng: Rng) -> Image.Image:
    """Keep 70-90 % of the width and of the height somewhere in the frame, scaled back up."""
    width, height = image.size
    keep_w = round(width * rng.uniform(0.70, 0.90))
    keep_h = round(height * rng.uniform(0.70, 0.90))
    left = int(rng.integers(0, width - keep_w + 1))
    top = int(rng.integers(0, height - keep_h + 1))
    return image.resize(image.size, Image.Resampling.LANCZOS,
                        box=(left, top, left + keep_w, top + keep_h))


def _centre_zoom(image: Image.Image, factor: float) -> Image.Image:
    """The centre 1/factor of ``image`` enlarged back to its size."""
    width, height = image.size
    keep_w, keep_h = width / factor, height / factor
    box = ((width - keep_w) / 2, (height - keep_h) / 2, (width + keep_w) / 2,
           (height + keep_h) / 2)
    return image.resize(image.size, Image.Resampling.LANCZOS, box=box)


def zoom(image: Image.Image, rng: Rng) -> Image.Image:
    """Zoom in on the centre by 1.2-1.6x (a Ken Burns still), the size kept."""
    return _centre_zoom(image, float(rng.uniform(1.2, 1.6)))


def rotate(image: Image.Image, rng: Rng) -> Image.Image:
    """Turn by 2-8 degrees either way; half the time zoomed to hide the corners."""
    angle = float(rng.uniform(2.0, 8.0)) * (1 if rng.random() < 0.5 else -1)
    turned = image.rotate(angle, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    if rng.random() < 0.5:
        return turned
    # The largest centred box free of corners, for small angles: shrink by about
    # 1 / (cos a + sin a * aspect).
    radians = np.deg2rad(abs(angle))
    aspect = max(image.width / image.height, image.height / image.width)
    return _centre_zoom(turned, float(np.cos(radians) + np.sin(radians) * aspect))


def grade(image: Image.Image, rng: Rng) -> Image.Image:
    """A colour grade: teal-and-orange, warm, cold, sepia, faded or black-and-white."""
    look = int(rng.integers(6))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if look == 0:  # teal shadows, orange highlights
        luma = pixels.mean(axis=2, keepdims=True)
        pixels = pixels + (luma - 0.5) * np.array([0.35, 0.05, -0.35], np.float32)
    elif look == 1:
        pixels = pixels * np.array([1.15, 1.0, 0.8], np.float32)
    elif look == 2:
        pixels = pixels * np.array([0.8, 0.95, 1.2], np.float32)
    elif look == 3:
        luma = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
        pixels = luma[..., None] * np.array([1.07, 0.74, 0.43], np.float32) * 1.2
    elif look == 4:  # lifted blacks, lowered whites, less colour
        pixels = 0.15 + 0.7 * pixels
        pixels = pixels.mean(axis=2, keepdims=True) * 0.4 + pixels * 0.6
    else:
        luma = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
        pixels = np.repeat(luma[..., None], 3, axis=2)
    graded = Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")
    if rng.random() < 0.5:
        graded = color_shift(graded, hue_degrees=float(rng.uniform(-25.0, 25.0)))
    return graded


def light(image: Image.Image, rng: Rng) -> Image.Image:
    """Brightness 0.6-1.5x and contrast 0.6-1.6x."""
    out = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.6, 1.5)))
    return ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.6, 1.6)))


def heavy_jpeg(image: Image.Image, rng: Rng) -> Image.Image:
    """JPEG at quality 5-15, half the time through a half-size copy (a re-encoded re-upload)."""
    if rng.random() < 0.5:
        small = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
        return jpeg_reencode(small, int(rng.integers(5, 16))).resize(
            image.size, Image.Resampling.BILINEAR)
    return jpeg_reencode(image, int(rng.integers(5, 16)))


def _bold_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(size, 8))


def draw_text(image: Image.Image, rng: Rng) -> Image.Image:
    """One or two big outlined captions (yellow, white or red), as clickbait thumbnails have."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    for _ in range(int(rng.integers(1, 3))):
        text = _CAPTIONS[int(rng.integers(len(_CAPTIONS)))]
        font = _bold_font(round(height * rng.uniform(0.14, 0.26)))
        fill = [(255, 230, 0), (255, 255, 255), (230, 20, 20)][int(rng.integers(3))]
        x = width * rng.uniform(0.03, 0.5)
        y = height * rng.uniform(0.03, 0.7)
        draw.text((x, y), text, font=font, fill=fill, stroke_width=max(1, height // 60),
                  stroke_fill=(0, 0, 0))
    return out


def _face(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 204, 40), outline=(200, 140, 0),
                 width=max(1, round(r / 12)))
    eye = r * 0.14
    for dx in (-0.35, 0.35):
        draw.ellipse((x + dx * r - eye, y - 0.3 * r - eye * 1.5, x + dx * r + eye,
                      y - 0.3 * r + eye * 1.5), fill=(60, 30, 0))
    draw.ellipse((x - 0.35 * r, y + 0.05 * r, x + 0.35 * r, y + 0.6 * r), fill=(120, 20, 20))


def _heart(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    red = (230, 30, 60)
    draw.ellipse((x - r, y - r * 0.6, x, y + r * 0.4), fill=red)
    draw.ellipse((x, y - r * 0.6, x + r, y + r * 0.4), fill=red)
    draw.polygon([(x - r * 0.97, y), (x + r * 0.97, y), (x, y + r)], fill=red)


def _arrow(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    red = (235, 20, 20)
    draw.polygon([(x - r, y - r * 0.25), (x, y - r * 0.25), (x, y - r * 0.6), (x + r, y),
                  (x, y + r * 0.6), (x, y + r * 0.25), (x - r, y + r * 0.25)], fill=red,
                 outline=(255, 255, 255))


def _ring(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), outline=(240, 20, 20), width=max(2, round(r / 6)))


def draw_emoji(image: Image.Image, rng: Rng) -> Image.Image:
    """One to three emoji-like shapes (a face, a heart, an arrow, a red ring) drawn on top;
    no colour emoji font is needed."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    shapes = (_face, _heart, _arrow, _ring)
    for _ in range(int(rng.integers(1, 4))):
        r = height * rng.uniform(0.08, 0.2)
        x, y = rng.uniform(r, width - r), rng.uniform(r, height - r)
        shapes[int(rng.integers(len(shapes)))](draw, float(x), float(y), float(r))
    return out


def border(image: Image.Image, rng: Rng) -> Image.Image:
    """A solid border or a two-tone frame of 3-10 % of the height; the size is kept."""
    width, height = image.size
    thick = max(2, round(height * rng.uniform(0.03, 0.10)))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    inner = image.resize((width - 2 * thick, height - 2 * thick), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", image.size, colour)
    canvas.paste(inner, (thick, thick))
    if rng.random() < 0.5:
        line = max(1, thick // 3)
        ImageDraw.Draw(canvas).rectangle((thick - line, thick - line, width - thick + line - 1,
                                          height - thick + line - 1), outline=(255, 255, 255),
                                         width=line)
    return canvas


def backdrop(size: tuple[int, int], rng: Rng) -> Image.Image:
    """A new backdrop: a vertical gradient between two colours, or blurred noise."""
    width, height = size
    if rng.random() < 0.5:
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        pixels = top * (1 - ramp) + bottom * ramp
        return Image.fromarray(np.broadcast_to(pixels, (height, width, 3)).astype(np.uint8),
                               "RGB")
    noise = rng.integers(0, 256, (max(1, height // 40), max(1, width // 40), 3), dtype=np.uint8)
    return Image.fromarray(noise, "RGB").resize(size, Image.Resampling.BICUBIC).filter(
        ImageFilter.GaussianBlur(max(1, height // 30)))


def picture_in_picture(image: Image.Image, rng: Rng) -> Image.Image:
    """The thumbnail at 35-65 % of its size on a new background, somewhere in the frame."""
    scale = float(rng.uniform(0.35, 0.65))
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    canvas = backdrop(image.size, rng)
    x = int(rng.integers(0, image.width - small.width + 1))
    y = int(rng.integers(0, image.height - small.height + 1))
    canvas.paste(small, (x, y))
    return canvas


def _mirror(image: Image.Image, rng: Rng) -> Image.Image:
    return hflip(image)


#: The single edits by kind name, in the order a combination applies them (geometry,
#: then colour, then overlays, then framing, then compression).
EDITS = {
    "mirror": _mirror,
    "crop": crop_window,
    "zoom": zoom,
    "rotate": rotate,
    "grade": grade,
    "light": light,
    "text": draw_text,
    "emoji": draw_emoji,
    "border": border,
    "pip": picture_in_picture,
    "jpeg": heavy_jpeg,
}
