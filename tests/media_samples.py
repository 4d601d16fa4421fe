"""Real media files for tests, made on the spot: a JPEG carrying GPS EXIF, PNG, GIF, WAV,
WebM and MP4 (the videos with the ffmpeg that ``imageio-ffmpeg`` ships, so nothing is
installed by hand), plus the hostile kinds: HTML and SVG with script."""

from __future__ import annotations

import functools
import io
import math
import struct
import subprocess
import tempfile
import wave
import zlib
from pathlib import Path

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(width: int = 800, height: int = 600, *, rotate_tag: int = 1) -> bytes:
    """A JPEG whose EXIF holds a GPS position, a camera model and an orientation tag."""
    image = Image.new("RGB", (width, height), (200, 80, 40))
    for x in range(0, width, 40):
        for y in range(0, height, 40):
            image.putpixel((x, y), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0110] = "Secret Camera 9000"  # Model
    exif[ORIENTATION] = rotate_tag
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=92)
    return out.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (30, 120, 200, 180)).save(out, format="PNG")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid RGBA PNG of ``width`` x ``height`` transparent pixels, written row by row so
    the test never holds the pixels: 7,700 x 7,700 compresses to about 230 KB and would take
    over 230 MB decoded (the "decompression bomb" of a small upload)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (4 * width)  # filter byte, then the pixels
    parts = [compressor.compress(row) for _ in range(height)]
    data = b"".join(parts) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def photo_jpeg(width: int, height: int) -> bytes:
    """A camera-like JPEG: a colour gradient, so it compresses like a photo would not."""
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (60, 40), (i * 80, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A playable tone."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return out.getvalue()


@functools.cache
def _video(suffix: str, codec: tuple[str, ...]) -> bytes:
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"clip{suffix}"
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=15",
                "-t",
                "2",
                *codec,
                str(target),
            ],
            check=True,
        )
        return target.read_bytes()


def webm() -> bytes:
    """A 2-second VP8 WebM that Chromium plays."""
    return _video(".webm", ("-c:v", "libvpx", "-b:v", "300k"))


def mp4() -> bytes:
    """A 2-second H.264 MP4."""
    return _video(".mp4", ("-c:v", "libx264", "-pix_fmt", "yuv420p"))


HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
