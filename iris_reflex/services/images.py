"""Pictures, decoded and re-encoded with Pillow: cleaned uploads, thumbnails, avatars.

Why it is built this way:
- An image is rebuilt from its pixels before it is stored: rotation from EXIF is applied and
  every metadata block (GPS position, camera, XMP, comments) is dropped, so what is on disk
  and served is already clean. Only pixels, frame timing and the colour profile survive.
- Decoding costs memory, so it has a budget: a picture over ``MAX_IMAGE_PIXELS``, or an
  animation whose frames together pass ``MAX_ANIMATION_PIXELS`` (or ``MAX_FRAMES``), is not
  decoded (``None``): the caller keeps it as a plain file. Decoding stops as soon as the
  budget is spent, because a tiny GIF can declare hundreds of huge frames.
- Outputs are new incoming files from ``storage.incoming_path``; the caller adopts or
  deletes them. Nothing here chooses a path or a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from iris_reflex.services import storage
from iris_reflex.services.media_types import IMAGE_TYPES

THUMBNAIL_SIZE = (640, 640)
THUMBNAIL_TYPE = "image/webp"
# Decoding a huge image costs memory; bigger ones are stored as plain files, not previewed.
MAX_IMAGE_PIXELS = 60_000_000
# Animations: all frames together, and how many frames, before one is stored unpreviewed.
MAX_ANIMATION_PIXELS = 40_000_000
MAX_FRAMES = 500
_ANIMATION_KEYS = {"duration", "transparency", "disposal", "background", "loop"}


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded picture and its thumbnail: two new incoming files, and its size."""

    clean: Path
    thumbnail: Path
    width: int
    height: int


def _frames_within_budget(opened: Image.Image) -> list[Image.Image] | None:
    """Every frame of an animation as a metadata-free copy, or ``None`` once the frames'
    pixels pass ``MAX_ANIMATION_PIXELS`` (a tiny GIF can declare hundreds of huge frames;
    decoding stops as soon as the budget is spent)."""
    frames: list[Image.Image] = []
    spent = 0
    for frame in ImageSequence.Iterator(opened):
        spent += frame.width * frame.height
        if spent > MAX_ANIMATION_PIXELS or len(frames) >= MAX_FRAMES:
            return None
        copy = frame.copy()
        copy.info = {k: v for k, v in frame.info.items() if k in _ANIMATION_KEYS}
        frames.append(copy)
    return frames


def clean_image(source: Path, mime_type: str) -> CleanImage | None:
    """Re-encode an image from its pixels alone and make its thumbnail; ``None`` if it is not
    decodable or too big to preview (then it is kept as a plain file).

    Only pixels, frame timing and the colour profile survive: EXIF (GPS, camera), XMP and
    comments are not copied. Both outputs are new incoming files; the caller adopts or
    deletes them.
    """
    clean = storage.incoming_path()
    thumbnail = storage.incoming_path()
    try:
        with Image.open(source) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                return None
            fmt = IMAGE_TYPES[mime_type]
            icc = opened.info.get("icc_profile")
            options: dict[str, object] = {"icc_profile": icc} if icc else {}
            if getattr(opened, "is_animated", False):
                frames = _frames_within_budget(opened)
                if frames is None:
                    return None
                durations = [f.info.get("duration", 100) for f in frames]
                if fmt == "GIF":
                    options["loop"] = 0
                frames[0].save(
                    clean,
                    format=fmt,
                    save_all=True,
                    append_images=frames[1:],
                    duration=durations,
                    **options,
                )
                first = frames[0]
            else:
                upright = ImageOps.exif_transpose(opened)
                upright.info = {}
                if fmt == "JPEG":
                    options.update(quality=90, optimize=True)
                    if upright.mode not in ("RGB", "L"):
                        upright = upright.convert("RGB")
                elif fmt == "WEBP":
                    options.update(quality=90)
                upright.save(clean, format=fmt, **options)
                first = upright
            width, height = first.size
            preview = first.convert("RGBA" if first.mode in ("RGBA", "LA", "P") else "RGB")
            preview.thumbnail(THUMBNAIL_SIZE)
            preview.save(thumbnail, format="WEBP", quality=80)
        return CleanImage(clean=clean, thumbnail=thumbnail, width=width, height=height)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        storage.discard([clean, thumbnail])
        return None
    except BaseException:
        storage.discard([clean, thumbnail])
        raise


def square_picture(source: Path, size: int) -> Path | None:
    """The picture cropped to its centred square, ``size`` pixels wide, WebP, no metadata;
    ``None`` if it is not a decodable image (or too big to decode)."""
    target = storage.incoming_path()
    try:
        with Image.open(source) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                return None
            upright = ImageOps.exif_transpose(opened)
            mode = "RGBA" if upright.mode in ("RGBA", "LA", "P") else "RGB"
            square = ImageOps.fit(upright.convert(mode), (size, size))
            square.info = {}  # pixels only: no EXIF, XMP or comment
            square.save(target, format="WEBP", quality=85)
        return target
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        storage.discard([target])
        return None
