"""What a stored file is, decided from its content, and how a browser may be given it.

Why it is built this way:
- The content decides the type, never the name or the browser's claim: ``sniff`` reads the
  first bytes (``filetype`` signatures, plus a check for markup that a browser would run).
- Only a short allowlist of media types is ever served inline (``INLINE_TYPES``); everything
  else, HTML, SVG, XML and JavaScript included, goes out as a download (see ``api/media.py``).
- Every refusal to serve a file is the same ``NotFound(NO_SUCH_FILE)``, so nothing reveals
  which files exist.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import filetype

NO_SUCH_FILE = "No such file."
NAME_MAX = 255

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
VIDEO_TYPES = {"video/mp4", "video/webm", "video/ogg", "video/quicktime"}
AUDIO_TYPES = {
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/flac",
    "audio/mp4",
    "audio/aac",
    "audio/webm",
    "audio/opus",
}
# What a browser may show in place: decoded media only, never anything with script.
INLINE_TYPES = frozenset(IMAGE_TYPES) | VIDEO_TYPES | AUDIO_TYPES
_ALIASES = {
    "audio/x-wav": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/m4a": "audio/mp4",
    "audio/x-m4a": "audio/mp4",
}


@dataclass(frozen=True)
class ServedFile:
    """What the download endpoint needs: where the bytes are and how to present them."""

    path: Path
    mime_type: str
    name: str
    inline: bool


def _markup_type(head: bytes) -> str | None:
    """HTML, SVG or XML recognised from the start of a text file (what browsers would run)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text[:2048]:
        return "image/svg+xml"
    if text.startswith(b"<?xml"):
        return "application/xml"
    markers = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")
    if any(marker in text[:2048] for marker in markers):
        return "text/html"
    return None


def sniff(path: Path) -> str:
    """The file's type from its content: a MIME type, ``application/octet-stream`` if unknown."""
    with path.open("rb") as handle:
        head = handle.read(8192)
    guess = filetype.guess(head)
    if guess is not None:
        return _ALIASES.get(guess.mime, guess.mime)
    markup = _markup_type(head)
    if markup:
        return markup
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 8 KiB boundary is still text.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    return "text/plain" if head else "application/octet-stream"


def kind_of(mime_type: str, *, has_thumbnail: bool = True) -> str:
    """How the UI presents a type: ``image`` (previewable), ``video``, ``audio`` or ``file``."""
    if mime_type in IMAGE_TYPES and has_thumbnail:
        return "image"
    if mime_type in VIDEO_TYPES:
        return "video"
    if mime_type in AUDIO_TYPES:
        return "audio"
    return "file"


def is_inline(mime_type: str) -> bool:
    """Whether a browser may display this type in place (else it is sent as a download)."""
    return mime_type in INLINE_TYPES


def display_name(name: str) -> str:
    """The original filename as shown to people: last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(cleaned) > NAME_MAX:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = stem[: NAME_MAX - len(ext) - 1] + dot + ext if dot and len(ext) <= 16 else cleaned
        cleaned = cleaned[:NAME_MAX]
    return cleaned or "file"
