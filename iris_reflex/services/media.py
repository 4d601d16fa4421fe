"""Media: storing uploads, attaching them to messages, and deciding who may fetch them.

Why it is built this way:
- The content decides the type, never the name or the browser's claim: ``sniff`` reads the
  first bytes (``filetype`` signatures, plus a check for markup that a browser would run).
- Images are re-encoded with Pillow before they are stored: rotation from EXIF is applied and
  every metadata block (GPS position, camera, XMP) is dropped, so what is on disk and served
  is already clean; the raw upload is deleted. Each image also gets a small WebP thumbnail.
- Only a short allowlist of media types is ever served inline (``INLINE_TYPES``); everything
  else, HTML, SVG, XML and JavaScript included, goes out as a download (see ``api/media.py``).
- An upload is *pending* (``message_id`` is NULL) until a message claims it. Only its
  uploader can attach or discard it; nobody can fetch it. Abandoned pending uploads are
  deleted by the sweep after ``PENDING_LIFETIME``.
- Fetching goes through ``conversations.get_message``: the same rule that shows a message
  (participant, still friends, not deleted, not expired) decides whether its files are served,
  so no second copy of that rule exists. Every refusal is the same ``NotFound``.
- The quota counts every stored byte the user uploaded, pending uploads included.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import filetype
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select

from iris_reflex import clock
from iris_reflex.errors import Invalid, NotFound, TooLarge
from iris_reflex.models import Attachment, User
from iris_reflex.services import storage
from iris_reflex.settings import get_settings

NO_SUCH_FILE = "No such file."
PENDING_LIFETIME = timedelta(hours=24)
THUMBNAIL_SIZE = (640, 640)
THUMBNAIL_TYPE = "image/webp"
# Decoding a huge image costs memory; bigger ones are stored as plain files, not previewed.
MAX_IMAGE_PIXELS = 60_000_000
# Animations: all frames together, and how many frames, before one is stored unpreviewed.
MAX_ANIMATION_PIXELS = 40_000_000
MAX_FRAMES = 500
_ANIMATION_KEYS = {"duration", "transparency", "disposal", "background", "loop"}
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
class AttachmentView:
    """A file as the participants of its conversation see it."""

    id: int
    message_id: int | None
    name: str
    mime_type: str
    kind: str  # "image", "video", "audio" or "file"
    size_bytes: int
    width: int | None
    height: int | None
    has_thumbnail: bool

    @classmethod
    def of(cls, row: Attachment) -> AttachmentView:
        assert row.id is not None
        return cls(
            id=row.id,
            message_id=row.message_id,
            name=row.original_name,
            mime_type=row.mime_type,
            kind=kind_of(row.mime_type, has_thumbnail=row.thumbnail_key is not None),
            size_bytes=row.size_bytes,
            width=row.width,
            height=row.height,
            has_thumbnail=row.thumbnail_key is not None,
        )


@dataclass(frozen=True)
class ServedFile:
    """What the download endpoint needs: where the bytes are and how to present them."""

    path: Path
    mime_type: str
    name: str
    inline: bool


# ------------------------------------------------------------------------------ detection


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


# --------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class _Image:
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


def _clean_image(source: Path, mime_type: str) -> _Image | None:
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
        return _Image(clean=clean, thumbnail=thumbnail, width=width, height=height)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        clean.unlink(missing_ok=True)
        thumbnail.unlink(missing_ok=True)
        return None
    except BaseException:
        clean.unlink(missing_ok=True)
        thumbnail.unlink(missing_ok=True)
        raise


# -------------------------------------------------------------------------------- storing


def limit_bytes() -> int:
    """The configured size limit per file."""
    return get_settings().max_upload_mb * 1024 * 1024


def used_bytes(session: Session, *, user_id: int) -> int:
    """Bytes the user's uploads occupy (pending ones included), for the quota."""
    total = session.exec(
        select(func.coalesce(func.sum(Attachment.size_bytes), 0)).where(
            Attachment.uploader_id == user_id
        )
    ).one()
    return int(total or 0)


def _check_quota(session: Session, *, user_id: int, adding: int) -> None:
    quota = get_settings().user_quota_mb * 1024 * 1024
    if used_bytes(session, user_id=user_id) + adding > quota:
        raise TooLarge(
            f"Your storage quota of {get_settings().user_quota_mb:,} MB is full: "
            "delete some messages with files, then try again."
        )


def store_upload(session: Session, *, actor_id: int, source: Path, name: str) -> AttachmentView:
    """Keep a received file as a pending upload of the actor; returns it.

    ``source`` is an incoming file (``storage.receive``); it is consumed: moved into place or
    deleted, whatever happens. Images are stored cleaned (see the module docstring).

    Raises:
        TooLarge: over the per-file limit or the user's quota (nothing is kept).
        Invalid: an empty file.
    """
    produced: list[Path] = [source]
    adopted: list[str] = []
    try:
        size = source.stat().st_size
        if size == 0:
            raise Invalid("That file is empty.")
        if size > limit_bytes():
            raise TooLarge(storage.too_large_message(limit_bytes()))
        _check_quota(session, user_id=actor_id, adding=size)
        mime_type = sniff(source)
        stored, thumbnail_key, width, height = source, None, None, None
        if mime_type in IMAGE_TYPES:
            image = _clean_image(source, mime_type)
            if image is not None:
                produced += [image.clean, image.thumbnail]
                stored, width, height = image.clean, image.width, image.height
                thumbnail_key = storage.new_key()
                storage.adopt(image.thumbnail, thumbnail_key)
                adopted.append(thumbnail_key)
        key = storage.new_key()
        storage.adopt(stored, key)
        adopted.append(key)
        final_size = storage.path_for(key).stat().st_size
        if final_size > limit_bytes():
            raise TooLarge(storage.too_large_message(limit_bytes()))
        # Re-checked on what is stored (re-encoding can grow a picture), with the uploader's
        # row locked so parallel uploads cannot all pass the check (PostgreSQL; SQLite
        # serialises writers anyway).
        session.exec(select(User).where(User.id == actor_id).with_for_update()).one()
        _check_quota(session, user_id=actor_id, adding=final_size)
        row = Attachment(
            message_id=None,
            uploader_id=actor_id,
            storage_key=key,
            original_name=display_name(name),
            mime_type=mime_type,
            size_bytes=final_size,
            width=width,
            height=height,
            thumbnail_key=thumbnail_key,
            created_at=clock.now(),
        )
        session.add(row)
        session.commit()
        session.refresh(row)
        return AttachmentView.of(row)
    except BaseException:
        session.rollback()
        storage.delete_keys(adopted)
        raise
    finally:
        for path in produced:
            path.unlink(missing_ok=True)


def _pending(session: Session, *, actor_id: int, ids: Sequence[int]) -> list[Attachment]:
    return list(
        session.exec(
            select(Attachment).where(
                col(Attachment.id).in_(ids),
                Attachment.uploader_id == actor_id,
                col(Attachment.message_id).is_(None),
            )
        ).all()
    )


def check_attachable(
    session: Session, *, actor_id: int, attachment_ids: Sequence[int]
) -> list[int]:
    """The distinct ids, if the actor may attach them all to one message.

    Raises:
        Invalid: too many files, or one is not the actor's pending upload (already sent,
            discarded, someone else's or made up: one message for all).
    """
    ids = list(dict.fromkeys(int(i) for i in attachment_ids))
    most = get_settings().max_files_per_message
    if len(ids) > most:
        raise Invalid(f"A message can carry at most {most} files.")
    if ids and len(_pending(session, actor_id=actor_id, ids=ids)) != len(ids):
        raise Invalid("A file to send is no longer available: attach it again.")
    return ids


def attach(
    session: Session, *, actor_id: int, message_id: int, attachment_ids: Sequence[int]
) -> None:
    """Give pending uploads to a message, in the caller's transaction (no commit).

    The update is conditional (still pending, still the actor's), so two sends racing for the
    same upload cannot both claim it.

    Raises:
        Invalid: an upload was claimed or discarded meanwhile (the caller rolls back).
    """
    if not attachment_ids:
        return
    result = session.exec(  # type: ignore[call-overload]
        update(Attachment)
        .where(
            col(Attachment.id).in_(attachment_ids),
            Attachment.uploader_id == actor_id,
            col(Attachment.message_id).is_(None),
        )
        .values(message_id=message_id)
    )
    if result.rowcount != len(attachment_ids):
        raise Invalid("A file to send is no longer available: attach it again.")


def _delete_pending(session: Session, ids: Sequence[int]) -> int:
    """Delete these uploads *if still pending*, then their files; returns how many.

    The condition and the delete are one statement, so an upload a send claims at the same
    moment is either claimed (and kept) or deleted (and the send fails): never a message whose
    file is gone. Rows go first here; a crash before the files leaves files no row names,
    which the sweep's orphan pass removes.
    """
    if not ids:
        return 0
    keys = session.exec(  # type: ignore[call-overload]
        delete(Attachment)
        .where(col(Attachment.id).in_(ids), col(Attachment.message_id).is_(None))
        .returning(Attachment.storage_key, Attachment.thumbnail_key)
    ).all()
    session.commit()
    storage.delete_keys(key for pair in keys for key in pair)
    return len(keys)


def discard_uploads(session: Session, *, actor_id: int, attachment_ids: Sequence[int]) -> None:
    """Delete the actor's own pending uploads (cancelled before sending). Idempotent."""
    ids = [int(i) for i in attachment_ids]
    if ids:
        mine = [row.id for row in _pending(session, actor_id=actor_id, ids=ids)]
        _delete_pending(session, [i for i in mine if i is not None])


def delete_abandoned_uploads(session: Session, *, older_than: datetime) -> int:
    """Delete pending uploads no message claimed since before ``older_than``; returns count."""
    ids = session.exec(
        select(Attachment.id)
        .where(col(Attachment.message_id).is_(None), col(Attachment.created_at) < older_than)
        .limit(1000)
    ).all()
    return _delete_pending(session, [i for i in ids if i is not None])


# -------------------------------------------------------------------------------- reading


def views_for_messages(
    session: Session, message_ids: Iterable[int]
) -> dict[int, tuple[AttachmentView, ...]]:
    """Each message's attachments in upload order (one query); trusts its caller's check."""
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    found: dict[int, list[AttachmentView]] = {}
    rows = session.exec(
        select(Attachment).where(col(Attachment.message_id).in_(ids)).order_by(col(Attachment.id))
    ).all()
    for row in rows:
        assert row.message_id is not None
        found.setdefault(row.message_id, []).append(AttachmentView.of(row))
    return {mid: tuple(views) for mid, views in found.items()}


def open_attachment(
    session: Session, *, actor_id: int, attachment_id: int, thumbnail: bool = False
) -> ServedFile:
    """The file (or thumbnail) of an attachment the actor may see; ``NotFound`` otherwise.

    May see: the actor is one of the two people of the message's conversation, still friends,
    and the message is neither deleted nor expired (``conversations.get_message``).
    """
    from iris_reflex.services import conversations  # conversations imports this module

    row = session.get(Attachment, attachment_id)
    if row is None or row.message_id is None:
        raise NotFound(NO_SUCH_FILE)
    try:
        conversations.get_message(session, actor_id=actor_id, message_id=row.message_id)
    except NotFound:
        raise NotFound(NO_SUCH_FILE) from None
    if thumbnail:
        if row.thumbnail_key is None:
            raise NotFound(NO_SUCH_FILE)
        key, mime_type = row.thumbnail_key, THUMBNAIL_TYPE
    else:
        key, mime_type = row.storage_key, row.mime_type
    path = storage.path_for(key)
    if not path.is_file():
        # Swept between the row check and now: the row goes at the same sweep.
        raise NotFound(NO_SUCH_FILE)
    return ServedFile(
        path=path, mime_type=mime_type, name=row.original_name, inline=is_inline(mime_type)
    )


def describe(views: Sequence[AttachmentView]) -> str:
    """A one-line preview of a message's files for the sidebar ("📷 Photo", "📎 2 files")."""
    if not views:
        return ""
    if len(views) > 1:
        return f"📎 {len(views)} files"
    only = views[0]
    return {
        "image": "📷 Photo",
        "video": "🎬 Video",
        "audio": "🎵 Audio",
    }.get(only.kind, f"📎 {only.name}")


# -------------------------------------------------------------------------------- avatars
# Profile pictures use the same storage and the same refusal (404) as attachments; who may
# see one is "the user and their friends", decided by ``friends.are_friends``.

AVATAR_SIZE = 256


def avatar_version(key: str | None) -> str | None:
    """A short fingerprint of the stored picture, for URLs that change when it changes
    (the storage key itself never leaves the server)."""
    if not key:
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _square_avatar(source: Path) -> Path | None:
    """The picture cropped to its centred square, 256×256 WebP, no metadata; ``None`` if it
    is not a decodable image."""
    target = storage.incoming_path()
    try:
        with Image.open(source) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                return None
            upright = ImageOps.exif_transpose(opened)
            mode = "RGBA" if upright.mode in ("RGBA", "LA", "P") else "RGB"
            square = ImageOps.fit(upright.convert(mode), (AVATAR_SIZE, AVATAR_SIZE))
            square.info = {}  # pixels only: no EXIF, XMP or comment
            square.save(target, format="WEBP", quality=85)
        return target
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        target.unlink(missing_ok=True)
        return None


def set_avatar(session: Session, *, actor_id: int, source: Path) -> str:
    """Make an uploaded image the actor's profile picture; returns its version.

    ``source`` (an incoming file) is consumed. The old picture's file is deleted after the
    new one is committed, so a crash leaves at worst an orphan that the sweep removes.

    Raises:
        Invalid: not a JPEG, PNG, GIF or WebP image.
        TooLarge: over the per-file limit.
    """
    produced = [source]
    try:
        if source.stat().st_size > limit_bytes():
            raise TooLarge(storage.too_large_message(limit_bytes()))
        if sniff(source) not in IMAGE_TYPES:
            raise Invalid("A profile picture must be a JPEG, PNG, GIF or WebP image.")
        square = _square_avatar(source)
        if square is None:
            raise Invalid("That picture could not be read.")
        produced.append(square)
        user = session.get(User, actor_id)
        if user is None:
            raise NotFound("No such user.")
        key = storage.new_key()
        storage.adopt(square, key)
        old, user.avatar_key = user.avatar_key, key
        session.add(user)
        try:
            session.commit()
        except BaseException:
            session.rollback()
            storage.delete_keys([key])
            raise
        storage.delete_keys([old])
        return avatar_version(key) or ""
    finally:
        for path in produced:
            path.unlink(missing_ok=True)


def remove_avatar(session: Session, *, actor_id: int) -> None:
    """Back to the initial letter; the picture's file is deleted. Idempotent."""
    user = session.get(User, actor_id)
    if user is None or not user.avatar_key:
        return
    old, user.avatar_key = user.avatar_key, None
    session.add(user)
    session.commit()
    storage.delete_keys([old])


def open_avatar(session: Session, *, actor_id: int, username: str) -> ServedFile:
    """A user's picture for the actor: themselves or a friend (not blocked); else NotFound."""
    from iris_reflex.services import friends, users  # both import this module's neighbours

    user = users.get_by_username(session, username)
    if user is None or user.id is None or not user.avatar_key:
        raise NotFound(NO_SUCH_FILE)
    if user.id != actor_id and (
        not friends.are_friends(session, actor_id, user.id)
        or friends.blocked_between(session, actor_id, user.id)
    ):
        raise NotFound(NO_SUCH_FILE)
    path = storage.path_for(user.avatar_key)
    if not path.is_file():
        raise NotFound(NO_SUCH_FILE)
    return ServedFile(path=path, mime_type=THUMBNAIL_TYPE, name="avatar.webp", inline=True)
