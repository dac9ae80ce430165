"""Real photos made into YouTube-style thumbnails, and near-duplicate re-uploads of them.
``python -m search.eval.samples OUT_DIR`` writes them as yt-dlp lays out a folder."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from indexer.bounds import quote
from indexer.errors import ConfigError, InputError, ThumbsearchError

__all__ = [
    "FRAME_ASPECT",
    "PHOTO_TITLES",
    "THUMBNAIL_SIZES",
    "SampleVideo",
    "color_shift",
    "crop",
    "draw_duration_badge",
    "draw_title",
    "hflip",
    "jpeg_reencode",
    "letterbox",
    "main",
    "make_variants",
    "sample_photos",
    "video_id_for",
    "write_ytdlp_folder",
    "youtube_thumbnail",
]

#: (width, height) in pixels of each thumbnail i.ytimg.com serves at /vi/<id>/<name>.jpg.
THUMBNAIL_SIZES: dict[str, tuple[int, int]] = {
    "default": (120, 90),
    "mqdefault": (320, 180),
    "hqdefault": (480, 360),
    "sddefault": (640, 480),
    "maxresdefault": (1280, 720),
}

#: Width / height of a video frame.
FRAME_ASPECT = 16 / 9

#: A human title for every photo sample_photos() returns, used as the "original" video title.
PHOTO_TITLES: dict[str, str] = {
    "astronaut": "Astronaut portrait before the mission",
    "camera": "Classic photographer with a film camera",
    "chelsea": "Chelsea the cat's lazy afternoon & nap",
    "coffee": "Perfect espresso: latte art at home",
    "coins": "Old coin collection, close-up",
    "rocket": "Rocket on the launch pad at dawn",
    "hubble_deep_field": "Hubble deep field: thousands of galaxies",
    "motorcycle": "Motorcycle in the garage, stereo shot",
    "china": "Temple in the mountains of China",
    "flower": "Flower garden in full bloom",
}

_INSTALL_HINT = "install the dev extra: pip install -e .[dev]"

# Fake channels: originals come from one, re-uploads from the others, so a
# benchmark can tell "same image, other uploader" apart from "same upload".
_ORIGINAL_CHANNEL = "Sample Originals"
_REUPLOAD_CHANNELS = ("Reupload Central", "Daily Clips 4U", "ThumbFarm")

_BADGE_FILL = (0, 0, 0, 204)  # YouTube's badge: black at 80 % opacity
_TITLE_BAND_FILL = (0, 0, 0, 153)

_CLICKBAIT_TITLES = (
    "You WON'T believe this",
    "TOP 10 MOMENTS",
    "Full video (HD)",
    "REUPLOAD - watch before it's gone",
    "Best of the year",
    "MUST SEE!!!",
)


@dataclass(frozen=True)
class SampleVideo:
    """One video written by write_ytdlp_folder: its thumbnail file and metadata."""

    video_id: str
    title: str
    channel_id: str
    channel_title: str
    photo: str
    variant: str
    path: Path

    @property
    def info_path(self) -> Path:
        """The yt-dlp .info.json file beside the thumbnail."""
        return self.path.with_name(self.path.name.removesuffix(".jpg") + ".info.json")


@cache
def _photo_arrays() -> dict[str, np.ndarray[Any, np.dtype[np.uint8]]]:
    """Load the bundled photos once; arrays are read-only so the cache cannot be altered."""
    try:
        from skimage import data as skdata
        from sklearn.datasets import load_sample_image
    except ImportError as exc:
        raise ConfigError(
            f"sample photos need scikit-image and scikit-learn; {_INSTALL_HINT}"
        ) from exc

    # Only images bundled in the scikit-image wheel: others (eagle, lily, ...)
    # need pooch and a download. Textures, drawings and microscopy are left out
    # because they do not look like video frames.
    # stereo_motorcycle has no annotations in skimage's stubs; typed here.
    motorcycle: Callable[[], tuple[Any, ...]] = skdata.stereo_motorcycle
    loaders: dict[str, Callable[[], Any]] = {
        "astronaut": skdata.astronaut,
        "camera": skdata.camera,
        "chelsea": skdata.chelsea,
        "coffee": skdata.coffee,
        "coins": skdata.coins,
        "rocket": skdata.rocket,
        "hubble_deep_field": skdata.hubble_deep_field,
        "motorcycle": lambda: motorcycle()[0],
        "china": lambda: load_sample_image("china.jpg"),
        "flower": lambda: load_sample_image("flower.jpg"),
    }
    arrays: dict[str, np.ndarray[Any, np.dtype[np.uint8]]] = {}
    for name, load in loaders.items():
        try:
            array = np.asarray(load(), dtype=np.uint8)
        except (OSError, ModuleNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"cannot load sample photo {name!r} ({exc}); {_INSTALL_HINT}"
            ) from exc
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        array = np.ascontiguousarray(array[..., :3])
        array.setflags(write=False)
        arrays[name] = array
    return arrays


def sample_photos() -> dict[str, Image.Image]:
    """Named RGB photos bundled with scikit-image and scikit-learn (fresh copies each call)."""
    return {name: Image.fromarray(array, "RGB").copy() for name, array in _photo_arrays().items()}


def _size_of(name: str) -> tuple[int, int]:
    """The (width, height) of a thumbnail name, or InputError."""
    try:
        return THUMBNAIL_SIZES[name]
    except KeyError:
        names = ", ".join(THUMBNAIL_SIZES)
        raise InputError(f"unknown thumbnail name {quote(name)}; expected one of {names}") from None


def _frame_size(name: str) -> tuple[int, int]:
    """Size of the 16:9 frame inside a thumbnail of this name (the part between the bars)."""
    width, height = _size_of(name)
    return width, min(height, round(width / FRAME_ASPECT))


def _rgb(image: Image.Image) -> Image.Image:
    """The image in RGB mode (grey, palette and alpha images are converted)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def letterbox(img: Image.Image, name: str) -> Image.Image:
    """Fit the whole image into the thumbnail size of `name`, padding with black bars."""
    width, height = _size_of(name)
    fitted = ImageOps.contain(_rgb(img), (width, height), method=Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return canvas


def _frame(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Cover-crop the image at its centre to the aspect of `size` and resize to it."""
    return ImageOps.fit(_rgb(image), size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def youtube_thumbnail(image: Image.Image, name: str = "mqdefault") -> Image.Image:
    """Render a photo as the video frame's thumbnail `name` (4:3 names get letterbox bars)."""
    return letterbox(_frame(image, _frame_size(name)), name)


def jpeg_reencode(img: Image.Image, quality: int) -> Image.Image:
    """Encode as JPEG at `quality` (1..95) and decode again, keeping the artefacts."""
    if not 1 <= quality <= 95:
        raise InputError(f"JPEG quality must be within 1..95, got {quality}")
    buffer = io.BytesIO()
    _rgb(img).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def crop(
    img: Image.Image, fraction: float, center: tuple[float, float] = (0.5, 0.5)
) -> Image.Image:
    """Cut `fraction` of the width and height away around `center` (0..1) and scale back up."""
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"crop fraction must be within [0, 1), got {fraction}")
    width, height = img.size
    keep_w = max(1, round(width * (1.0 - fraction)))
    keep_h = max(1, round(height * (1.0 - fraction)))
    left = round(min(max(center[0] * width - keep_w / 2, 0), width - keep_w))
    top = round(min(max(center[1] * height - keep_h / 2, 0), height - keep_h))
    box = (left, top, left + keep_w, top + keep_h)
    return _rgb(img).resize((width, height), Image.Resampling.LANCZOS, box=box)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at a pixel size (no font files needed)."""
    return ImageFont.load_default(size=max(size, 6))


def _fit_text(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    max_width: float,
) -> str:
    """Shorten text with an ellipsis until it fits in max_width pixels."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "...", font=font) > max_width:
        text = text[:-1]
    return text.rstrip() + "..."


def draw_title(img: Image.Image, text: str) -> Image.Image:
    """Draw a title in white over a dark band across the top, as clickbait re-uploads do."""
    base = _rgb(img).convert("RGBA")
    width, height = base.size
    band_h = max(8, round(height * 0.18))
    font = _font(round(band_h * 0.6))
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, 0, width, band_h), fill=_TITLE_BAND_FILL)
    margin = max(2, round(width * 0.03))
    fitted = _fit_text(draw, text, font, width - 2 * margin)
    draw.text((margin, band_h / 2), fitted, font=font, fill=(255, 255, 255, 255), anchor="lm")
    return Image.alpha_composite(base, overlay).convert("RGB")


def draw_duration_badge(img: Image.Image, text: str = "12:34") -> Image.Image:
    """Draw YouTube's duration badge: white text in a dark rounded box at the bottom right."""
    base = _rgb(img).convert("RGBA")
    width, height = base.size
    font = _font(round(height * 0.075))
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad_x, pad_y = max(2, round(height * 0.02)), max(1, round(height * 0.012))
    margin = max(2, round(height * 0.03))
    box_w, box_h = (right - left) + 2 * pad_x, (bottom - top) + 2 * pad_y
    x1, y1 = width - margin, height - margin
    x0, y0 = x1 - box_w, y1 - box_h
    draw.rounded_rectangle((x0, y0, x1, y1), radius=max(1, box_h // 4), fill=_BADGE_FILL)
    draw.text((x0 + pad_x - left, y0 + pad_y - top), text, font=font, fill=(255, 255, 255, 255))
    return Image.alpha_composite(base, overlay).convert("RGB")


def color_shift(
    img: Image.Image, brightness: float = 1.0, saturation: float = 1.0, hue_degrees: float = 0.0
) -> Image.Image:
    """Scale brightness and saturation (1.0 keeps them) and rotate the hue by some degrees."""
    out = ImageEnhance.Brightness(_rgb(img)).enhance(brightness)
    out = ImageEnhance.Color(out).enhance(saturation)
    if hue_degrees % 360:
        hsv = np.array(out.convert("HSV"), dtype=np.uint8)
        # Pillow's HSV hue runs 0..255 for a full turn; uint8 arithmetic wraps around.
        shift = round(hue_degrees / 360.0 * 256.0) % 256
        hsv[..., 0] = (hsv[..., 0].astype(np.uint16) + shift).astype(np.uint8)
        out = Image.fromarray(hsv, "HSV").convert("RGB")
    return out


def hflip(img: Image.Image) -> Image.Image:
    """Mirror left to right, the cheapest way re-uploaders dodge matching."""
    return ImageOps.mirror(_rgb(img))


def _duration_text(rng: np.random.Generator) -> str:
    """A plausible badge text: m:ss under an hour, h:mm:ss beyond."""
    seconds = int(rng.integers(15, 3 * 3600))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def make_variants(image: Image.Image, n: int, seed: int) -> list[tuple[str, Image.Image]]:
    """n named YouTube-style re-uploads of one photo, the same for the same seed."""
    if n < 0:
        raise InputError(f"number of variants must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    names = list(THUMBNAIL_SIZES)
    variants: list[tuple[str, Image.Image]] = []
    for _ in range(n):
        size_name = names[int(rng.integers(len(names)))]
        parts = [size_name]
        # Edits act on the 16:9 frame before letterboxing: a re-uploader edits
        # the frame (or a screenshot of the player, badge included), and
        # YouTube adds the bars when it renders the 4:3 sizes.
        frame = _frame(image, _frame_size(size_name))
        if rng.random() < 0.5:
            fraction = float(rng.uniform(0.05, 0.25))
            center = (float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.4, 0.6)))
            frame = crop(frame, fraction, center)
            parts.append(f"crop{round(fraction * 100)}")
        if rng.random() < 0.3:
            frame = hflip(frame)
            parts.append("hflip")
        if rng.random() < 0.5:
            frame = color_shift(
                frame,
                brightness=float(rng.uniform(0.8, 1.2)),
                saturation=float(rng.uniform(0.7, 1.4)),
                hue_degrees=float(rng.uniform(-20.0, 20.0)),
            )
            parts.append("color")
        if rng.random() < 0.4:
            frame = draw_title(frame, _CLICKBAIT_TITLES[int(rng.integers(len(_CLICKBAIT_TITLES)))])
            parts.append("title")
        if rng.random() < 0.5:
            frame = draw_duration_badge(frame, _duration_text(rng))
            parts.append("badge")
        # Every re-upload is re-encoded at least once by YouTube.
        quality = int(rng.integers(25, 91))
        thumb = jpeg_reencode(letterbox(frame, size_name), quality)
        parts.append(f"jpeg{quality}")
        variants.append(("+".join(parts), thumb))
    return variants


def video_id_for(text: str) -> str:
    """A deterministic 11-character YouTube-style video id (base64url) derived from text."""
    # A real id is 64 bits in URL-safe base64: 11 characters, the first may be
    # '-' or '_', the last only one of 16 (it carries 4 bits).
    digest = hashlib.sha256(text.encode("utf-8")).digest()[:8]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _channel_id_for(text: str) -> str:
    """A deterministic 24-character YouTube-style channel id ('UC' + 22 base64url)."""
    digest = hashlib.sha256(("channel:" + text).encode("utf-8")).digest()[:16]
    return "UC" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _safe_filename(title: str) -> str:
    """The title as yt-dlp would put it in a file name (no path separators)."""
    # yt-dlp swaps '/' for a look-alike (U+29F8); other characters are fine on POSIX.
    return re.sub(r"[\x00-\x1f]", "", title.replace("/", "\u29f8")).strip() or "untitled"


def _info_json(
    *,
    video_id: str,
    title: str,
    description: str,
    channel_id: str,
    channel_title: str,
    uploaded: datetime,
    thumbnail_name: str,
    duration: int,
) -> dict[str, Any]:
    """The subset of yt-dlp's info dict that thumbsearch reads."""
    handle = "@" + re.sub(r"[^A-Za-z0-9]", "", channel_title)
    return {
        "id": video_id,
        "title": title,
        "description": description,
        "channel_id": channel_id,
        "channel": channel_title,
        "channel_url": f"https://www.youtube.com/channel/{channel_id}",
        "uploader": channel_title,
        "uploader_id": handle,
        "upload_date": uploaded.strftime("%Y%m%d"),
        "timestamp": int(uploaded.timestamp()),
        "thumbnail": f"https://i.ytimg.com/vi/{video_id}/{thumbnail_name}.jpg",
        "webpage_url": f"https://www.youtube.com/watch?v={video_id}",
        "duration": duration,
        "extractor": "youtube",
        "extractor_key": "Youtube",
        "_type": "video",
    }


def write_ytdlp_folder(
    out_dir: Path | str, variants_per_photo: int = 2, seed: int = 0
) -> list[SampleVideo]:
    """Write every sample photo as an original upload plus re-uploads, named as yt-dlp does.

    The photos are the ones scikit-image and scikit-learn ship inside their wheels
    (nothing is downloaded). Each is treated as a 16:9 video frame and rendered the
    way i.ytimg.com renders thumbnails: 16:9 names without bars, 4:3 names with the
    frame letterboxed between black bars. The variant operations imitate what
    re-uploaders do to a thumbnail (re-encode, crop, recolour, mirror, draw a
    title or a duration badge on it).

    Used by the demo, the test suite's fakes and the near-duplicate benchmark.
    ``python -m search.eval.samples OUT_DIR`` writes a folder laid out as yt-dlp
    writes one (``--write-thumbnail --write-info-json``).
    """
    if variants_per_photo < 0:
        raise InputError(f"variants per photo must be >= 0, got {variants_per_photo}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_time = datetime(2024, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    written: list[SampleVideo] = []
    for index, (photo, image) in enumerate(sample_photos().items()):
        title = PHOTO_TITLES.get(photo, photo.replace("_", " ").capitalize())
        uploaded = base_time + timedelta(days=7 * index, seconds=int(rng.integers(86_400)))
        uploads: list[tuple[str, str, str, Image.Image, datetime]] = [
            ("original", title, _ORIGINAL_CHANNEL, youtube_thumbnail(image, "mqdefault"), uploaded)
        ]
        variants = make_variants(image, variants_per_photo, seed * 1000 + index)
        for number, (variant, thumb) in enumerate(variants, start=1):
            channel = _REUPLOAD_CHANNELS[(index + number) % len(_REUPLOAD_CHANNELS)]
            later = uploaded + timedelta(days=int(rng.integers(1, 400)))
            uploads.append((variant, f"{title} (reupload {number})", channel, thumb, later))
        for variant, video_title, channel, thumb, when in uploads:
            video_id = video_id_for(f"sample:{seed}:{photo}:{variant}:{video_title}")
            channel_id = _channel_id_for(channel)
            stem = f"{_safe_filename(video_title)} [{video_id}]"
            path = out / f"{stem}.jpg"
            thumb.save(path, format="JPEG", quality=90)
            info = _info_json(
                video_id=video_id,
                title=video_title,
                description=f"{video_title}. Photo '{photo}' from the scikit-image/scikit-learn "
                "sample data.",
                channel_id=channel_id,
                channel_title=channel,
                uploaded=when,
                thumbnail_name=variant.split("+", 1)[0] if variant != "original" else "mqdefault",
                duration=int(rng.integers(30, 1800)),
            )
            info_path = out / f"{stem}.info.json"
            info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", "utf-8")
            written.append(
                SampleVideo(video_id, video_title, channel_id, channel, photo, variant, path)
            )
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sample yt-dlp folder given on the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m search.eval.samples",
        description="Write sample photos as YouTube thumbnails in a yt-dlp style folder.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--variants", type=int, default=2, help="re-uploads per photo (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the variants")
    args = parser.parse_args(argv)
    try:
        videos = write_ytdlp_folder(args.out_dir, variants_per_photo=args.variants, seed=args.seed)
    except ThumbsearchError as exc:
        print(f"error: {exc}")
        return exc.exit_code
    originals = [v.video_id for v in videos if v.variant == "original"]
    (Path(args.out_dir) / "originals.txt").write_text("\n".join(originals) + "\n", "utf-8")
    print(
        f"wrote {2 * len(videos)} files ({len(videos)} videos, .jpg + .info.json) to {args.out_dir}"
        f"; ids of the originals in originals.txt"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
