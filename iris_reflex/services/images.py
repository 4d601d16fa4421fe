"""Pictures, decoded and re-encoded with Pillow: cleaned uploads, thumbnails, avatars.

Why it is built this way:
- An image is rebuilt from its pixels before it is stored: rotation from EXIF is applied and
  every metadata block (GPS position, camera, XMP, comments) is dropped, so what is on disk
  and served is already clean. Only pixels, frame timing and the colour profile survive.
- Decoding costs memory, and a file's size says nothing about it: a 168 KB PNG can declare
  7,700 x 7,700 pixels, over 600 MB once decoded and copied. So every decode has a budget,
  ``IRIS_IMAGE_MEMORY_MB``, turned into a pixel count (``pixel_budget``: four bytes a pixel,
  ``COPIES`` images alive at once while rotating and converting). The size is read from the
  header (``Image.open`` decodes nothing) and compared *before* any pixel is decoded. A JPEG
  over the budget is reduced while it is decoded (``Image.draft``: the decoder itself scales
  by 1/2, 1/4 or 1/8, so the full-size pixels never exist); any other picture over it, or
  an animation whose frames together pass it (or ``MAX_FRAMES``), is not decoded
  (``None``): the caller keeps it as a plain file without a preview. Decoding an animation
  stops as soon as the budget is spent, because a tiny GIF can declare hundreds of frames.
  Pillow's own ``MAX_IMAGE_PIXELS`` only warns below twice its value, so it is no limit.
- Each worker decodes at most ``IRIS_IMAGE_WORKERS`` pictures at once (a semaphore): four
  big uploads in parallel must not add up to four budgets. A picture that waits longer
  than ``IRIS_IMAGE_WAIT_SECONDS`` for its turn is refused with ``Throttled`` (try again).
- Outputs are new incoming files from ``storage.incoming_path``; the caller adopts or
  deletes them. Nothing here chooses a path or a key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from iris_reflex.errors import Throttled
from iris_reflex.services import storage
from iris_reflex.services.media_types import IMAGE_TYPES
from iris_reflex.settings import get_settings

THUMBNAIL_SIZE = (640, 640)
THUMBNAIL_TYPE = "image/webp"
# Pillow keeps up to four bytes a pixel (RGB is stored as RGBX). While a picture is made
# upright (a transposed copy, when it must turn), converted (CMYK to RGB) and re-encoded
# (the encoders' own buffers), about three times its decoded size is alive at once.
BYTES_PER_PIXEL = 4
COPIES = 3
# Animations: all frames together (also within the budget), and how many frames, before
# one is stored unpreviewed.
MAX_ANIMATION_PIXELS = 40_000_000
MAX_FRAMES = 500
_ANIMATION_KEYS = {"duration", "transparency", "disposal", "background", "loop"}
# JPEG decoders scale by these factors while decoding (``Image.draft``).
_DRAFT_SCALES = (1, 2, 4, 8)
BUSY = "The server is busy with other pictures. Please try again in a moment."
BUSY_RETRY_SECONDS = 5

_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def pixel_budget() -> int:
    """The most pixels one picture may have once decoded (``IRIS_IMAGE_MEMORY_MB``)."""
    return get_settings().image_memory_mb * 1024 * 1024 // (BYTES_PER_PIXEL * COPIES)


def _semaphore() -> threading.BoundedSemaphore:
    size = get_settings().image_workers
    with _slots_lock:
        if size not in _slots:
            _slots[size] = threading.BoundedSemaphore(size)
        return _slots[size]


@contextmanager
def image_slot() -> Iterator[None]:
    """One of this worker's ``IRIS_IMAGE_WORKERS`` decoding slots, held for the block.

    Raises:
        Throttled: no slot came free within ``IRIS_IMAGE_WAIT_SECONDS``.
    """
    semaphore = _semaphore()
    if not semaphore.acquire(timeout=get_settings().image_wait_seconds):
        raise Throttled(BUSY, retry_after=BUSY_RETRY_SECONDS)
    try:
        yield
    finally:
        semaphore.release()


def _within_budget(opened: Image.Image) -> bool:
    """Whether the picture fits the budget, reducing a JPEG on load if that makes it fit.

    Only the header has been read: ``opened.size`` is what the file declares.
    """
    budget = pixel_budget()
    width, height = opened.size
    if width * height <= budget:
        return True
    if opened.format != "JPEG":
        return False
    for scale in _DRAFT_SCALES[1:]:
        reduced = (-(-width // scale), -(-height // scale))
        if reduced[0] * reduced[1] <= budget:
            opened.draft(opened.mode, reduced)
            return opened.width * opened.height <= budget
    return False


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded picture and its thumbnail: two new incoming files, and its size."""

    clean: Path
    thumbnail: Path
    width: int
    height: int


def _frames_within_budget(opened: Image.Image) -> list[Image.Image] | None:
    """Every frame of an animation as a metadata-free copy, or ``None`` once the frames'
    pixels pass ``MAX_ANIMATION_PIXELS`` or the decode budget (a tiny GIF can declare
    hundreds of huge frames; decoding stops as soon as the budget is spent)."""
    frames: list[Image.Image] = []
    spent = 0
    budget = min(MAX_ANIMATION_PIXELS, pixel_budget())
    for frame in ImageSequence.Iterator(opened):
        spent += frame.width * frame.height
        if spent > budget or len(frames) >= MAX_FRAMES:
            return None
        copy = frame.copy()
        copy.info = {k: v for k, v in frame.info.items() if k in _ANIMATION_KEYS}
        frames.append(copy)
    return frames


def _thumbnail_of(image: Image.Image) -> Image.Image:
    """The preview: at most ``THUMBNAIL_SIZE``, RGB or RGBA. Shrunk before it is converted,
    so no second full-size copy is made (except from a palette, one byte a pixel)."""
    mode = "RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB"
    if image.mode in ("P", "PA", "1"):
        image = image.convert(mode)  # resizing palette pixels would not blend them
    scale = min(1.0, THUMBNAIL_SIZE[0] / image.width, THUMBNAIL_SIZE[1] / image.height)
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    return image.convert(mode)


def clean_image(source: Path, mime_type: str) -> CleanImage | None:
    """Re-encode an image from its pixels alone and make its thumbnail; ``None`` if it is not
    decodable or too big to preview (then it is kept as a plain file). A JPEG over the
    decode budget is stored reduced (by 1/2, 1/4 or 1/8) rather than refused.

    Only pixels, frame timing and the colour profile survive: EXIF (GPS, camera), XMP and
    comments are not copied. Both outputs are new incoming files; the caller adopts or
    deletes them.
    """
    clean = storage.incoming_path()
    thumbnail = storage.incoming_path()
    try:
        with image_slot(), Image.open(source) as opened:
            if not _within_budget(opened):
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
                # In place: a picture already upright is not copied (memory, see above).
                # Loaded first, so metadata read while decoding is cleared too.
                opened.load()
                ImageOps.exif_transpose(opened, in_place=True)
                upright: Image.Image = opened
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
            _thumbnail_of(first).save(thumbnail, format="WEBP", quality=80)
        return CleanImage(clean=clean, thumbnail=thumbnail, width=width, height=height)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        storage.discard([clean, thumbnail])
        return None
    except BaseException:
        storage.discard([clean, thumbnail])
        raise


def square_picture(source: Path, size: int) -> Path | None:
    """The picture cropped to its centred square, ``size`` pixels wide, WebP, no metadata;
    ``None`` if it is not a decodable image (or too big to decode).

    Raises:
        Throttled: this worker is decoding as many pictures as it may (``image_slot``).
    """
    target = storage.incoming_path()
    try:
        with image_slot(), Image.open(source) as opened:
            if not _within_budget(opened):
                return None
            opened.load()
            ImageOps.exif_transpose(opened, in_place=True)
            mode = "RGBA" if opened.mode in ("RGBA", "LA", "P") else "RGB"
            square = ImageOps.fit(opened.convert(mode), (size, size))
            square.info = {}  # pixels only: no EXIF, XMP or comment
            square.save(target, format="WEBP", quality=85)
        return target
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        storage.discard([target])
        return None
