"""Profile pictures: a square WebP per user, seen by the user and their friends only.

Pictures use the same storage and the same refusal (404) as attachments; who may see one
is "the user and their friends, neither blocking the other" (``friends``). The picture's
fingerprint for URLs (``users.avatar_version``) lives beside the users, which show it.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from iris_reflex.errors import Invalid, NotFound, TooLarge
from iris_reflex.models import User
from iris_reflex.services import blocks, friends, images, storage, users
from iris_reflex.services.media_types import IMAGE_TYPES, NO_SUCH_FILE, ServedFile, sniff

AVATAR_SIZE = 256


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
        if storage.size_of(source) > storage.limit_bytes():
            raise TooLarge(storage.too_large_message(storage.limit_bytes()))
        if sniff(source) not in IMAGE_TYPES:
            raise Invalid("A profile picture must be a JPEG, PNG, GIF or WebP image.")
        square = images.square_picture(source, AVATAR_SIZE)
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
        return users.avatar_version(key) or ""
    finally:
        storage.discard(produced)


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
    user = users.get_by_username(session, username)
    if user is None or user.id is None or not user.avatar_key:
        raise NotFound(NO_SUCH_FILE)
    if user.id != actor_id and (
        not friends.are_friends(session, actor_id, user.id)
        or blocks.blocked_between(session, actor_id, user.id)
    ):
        raise NotFound(NO_SUCH_FILE)
    path = storage.stored_file(user.avatar_key)
    if path is None:
        raise NotFound(NO_SUCH_FILE)
    return ServedFile(path=path, mime_type=images.THUMBNAIL_TYPE, name="avatar.webp", inline=True)
