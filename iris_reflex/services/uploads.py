"""Uploads: files kept for the uploader until a message claims them, and the quota.

Why it is built this way:
- An upload is *pending* (``message_id`` is NULL) until a message claims it. Only its
  uploader can attach or discard it; nobody can fetch it. Abandoned pending uploads are
  deleted by the sweep after ``PENDING_LIFETIME``.
- The type comes from the content (``media_types.sniff``); pictures are stored rebuilt from
  their pixels (``images.clean_image``) with a thumbnail, and the raw upload is deleted.
- The quota counts every stored byte the user uploaded, pending uploads included, and is
  checked again on what is stored under a per-user lock held until the insert commits
  (``_lock_uploader``: a row lock on PostgreSQL, the write lock on SQLite), so parallel
  uploads are counted one after the other on both databases.
- Claiming and discarding are single conditional statements, so a send and a discard racing
  for the same upload cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select

from iris_reflex import clock
from iris_reflex.errors import Invalid, TooLarge
from iris_reflex.models import Attachment, User
from iris_reflex.services import images, storage
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.media_types import IMAGE_TYPES, display_name, sniff
from iris_reflex.settings import get_settings

PENDING_LIFETIME = timedelta(hours=24)


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


def _lock_uploader(session: Session, user_id: int) -> None:
    """Serialise the quota check of one user's uploads until the caller commits.

    PostgreSQL: the uploader's row is locked (``FOR UPDATE``); a parallel upload waits, then
    its check (a new statement under READ COMMITTED) sees this one's row. SQLite has no row
    locks, and a plain ``SELECT`` does not even open a transaction there, so two checks
    could both read the old total: a no-op ``UPDATE`` takes the database's write lock
    first (what ``BEGIN IMMEDIATE`` would), and the check that follows reads inside that
    transaction, after every earlier upload was committed.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.exec(
            update(User).where(col(User.id) == user_id).values(last_seen_at=User.last_seen_at)
        )
    else:
        session.exec(select(User.id).where(User.id == user_id).with_for_update()).one()


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
        size = storage.size_of(source)
        if size == 0:
            raise Invalid("That file is empty.")
        if size > storage.limit_bytes():
            raise TooLarge(storage.too_large_message(storage.limit_bytes()))
        _check_quota(session, user_id=actor_id, adding=size)
        mime_type = sniff(source)
        stored, thumbnail_key, width, height = source, None, None, None
        if mime_type in IMAGE_TYPES:
            image = images.clean_image(source, mime_type)
            if image is not None:
                produced += [image.clean, image.thumbnail]
                stored, width, height = image.clean, image.width, image.height
                thumbnail_key = storage.new_key()
                storage.adopt(image.thumbnail, thumbnail_key)
                adopted.append(thumbnail_key)
        key = storage.new_key()
        storage.adopt(stored, key)
        adopted.append(key)
        final_size = storage.size_of(storage.path_for(key))
        if final_size > storage.limit_bytes():
            raise TooLarge(storage.too_large_message(storage.limit_bytes()))
        # Re-checked on what is stored (re-encoding can grow a picture), under a lock that
        # holds until the row is committed, so parallel uploads cannot all pass the check.
        _lock_uploader(session, actor_id)
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
        storage.discard(produced)


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
    result = session.exec(
        update(Attachment)
        .where(
            col(Attachment.id).in_(attachment_ids),
            col(Attachment.uploader_id) == actor_id,
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
    keys = session.exec(
        delete(Attachment)
        .where(col(Attachment.id).in_(ids), col(Attachment.message_id).is_(None))
        .returning(col(Attachment.storage_key), col(Attachment.thumbnail_key))
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
