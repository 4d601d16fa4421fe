"""Disappearing messages: reclaiming the space of expired and deleted messages.

Why it is built this way:
- Expiry is data. A message is hidden by every read the moment its ``expires_at`` passes
  (reads filter on it with the current time), so a sweep that runs late never exposes
  anything: the sweep only reclaims space and tells screens what vanished.
- Files go before rows. A batch deletes its attachments' files first, then the attachment and
  message rows, then commits. A crash in between leaves rows (still hidden, still due) that the
  next sweep retries; it never leaves a file whose row is gone, which nothing would find again.
- Idempotent and batched. Each batch is one short transaction over at most ``batch`` rows, in
  id order; running it again when nothing is due does nothing. ``sweep`` repeats batches
  until one comes back short, so a restart after downtime catches up in one call.
- User deletes and timer deletes share one code path (``purge``).
- Files no row refers to (an upload that crashed before its row was written) are found by
  ``delete_orphan_files``, which only touches files older than a cut-off so it cannot race an
  upload in progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import ColumnElement, and_, delete, not_, or_
from sqlmodel import Session, col, func, select

from iris_reflex.models import Attachment, Message, User
from iris_reflex.services import storage

# Keeps IN (...) lists well below every database's parameter limit.
_CHUNK = 500


@dataclass(frozen=True)
class Vanished:
    """A message whose row is gone: who must be told to drop it from their screens."""

    message_id: int
    conversation_id: int
    sender_id: int
    recipient_id: int
    # When it was due (None: deleted, not expired); for the sweep-lag figure, not identity.
    expires_at: datetime | None = field(default=None, compare=False)


def _visibility(now: datetime | ColumnElement[datetime], *, hidden: bool) -> ColumnElement[bool]:
    """The one definition of a visible message, or (``hidden``) its exact complement.

    A message shows while it is not deleted and has no deadline or a deadline still ahead.
    The complement is the same three conditions negated by De Morgan's laws, not a ``NOT
    (...)`` around them, so the sweep keeps using the partial indexes on ``expires_at`` and
    ``deleted_at`` (neither expression can be NULL, so the two are exact complements).
    """
    # The table's own columns (not the ORM's attributes): the condition fits ORM queries
    # and the plain statements of the hot path alike.
    messages = Message.metadata.tables["messages"]
    not_deleted = messages.c.deleted_at.is_(None)
    no_deadline = messages.c.expires_at.is_(None)
    ahead = messages.c.expires_at > now
    if hidden:
        return or_(not_(not_deleted), and_(not_(no_deadline), not_(ahead)))
    return and_(not_deleted, or_(no_deadline, ahead))


def visible(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """The SQL condition for "this message may still be shown or served" at ``now`` (a time,
    or a placeholder for one in a statement built once)."""
    return _visibility(now, hidden=False)


def hidden(now: datetime) -> ColumnElement[bool]:
    """The SQL condition for "this row is hidden and may be removed": ``visible``'s complement."""
    return _visibility(now, hidden=True)


def next_deadline(session: Session) -> datetime | None:
    """The earliest ``expires_at`` of any message row still present (maybe already past)."""
    return session.exec(select(func.min(Message.expires_at))).one()


def _vanished(
    session: Session, condition: ColumnElement[bool], limit: int | None = None
) -> list[Vanished]:
    """The rows matching ``condition``, oldest id first, as what will vanish."""
    # Five columns: sqlmodel's select is typed for at most four, so plain SQLAlchemy here.
    rows = (
        session.connection()
        .execute(
            sa.select(
                col(Message.id),
                col(Message.conversation_id),
                col(Message.sender_id),
                col(Message.recipient_id),
                col(Message.expires_at),
            )
            .where(condition)
            .order_by(col(Message.id))
            .limit(limit)
        )
        .all()
    )
    return [
        Vanished(
            message_id=int(mid),
            conversation_id=int(cid),
            sender_id=int(sid),
            recipient_id=int(rid),
            expires_at=due,
        )
        for mid, cid, sid, rid, due in rows
        if mid is not None
    ]


def _remove(session: Session, vanished: list[Vanished]) -> list[Vanished]:
    """Files first, then attachment rows, then message rows; one commit."""
    if not vanished:
        return []
    ids = [v.message_id for v in vanished]
    try:
        files = session.exec(
            select(Attachment.storage_key, Attachment.thumbnail_key).where(
                col(Attachment.message_id).in_(ids)
            )
        ).all()
        storage.delete_keys(key for pair in files for key in pair)
        session.exec(delete(Attachment).where(col(Attachment.message_id).in_(ids)))
        session.exec(delete(Message).where(col(Message.id).in_(ids)))
        session.commit()
    except BaseException:
        # The files may be gone already; the rows stay (hidden, still due) for the next sweep.
        session.rollback()
        raise
    return vanished


def purge(session: Session, message_ids: Sequence[int]) -> list[Vanished]:
    """Remove these messages: their attachments' files, then the attachment and message rows.

    Trusts its input: callers pass only ids that are already hidden (expired or deleted).
    Idempotent: ids already gone are skipped. Commits; on failure rolls back and re-raises,
    leaving the rows for the next attempt.
    """
    if not message_ids:
        return []
    return _remove(session, _vanished(session, col(Message.id).in_(sorted(set(message_ids)))))


def delete_expired(session: Session, *, now: datetime, batch: int = 500) -> list[Vanished]:
    """One batch: remove up to ``batch`` expired or deleted messages, oldest id first.

    Returns what vanished (empty when nothing is due).
    """
    return _remove(session, _vanished(session, hidden(now), limit=max(1, batch)))


def sweep(session: Session, *, now: datetime, batch: int = 500) -> list[Vanished]:
    """Remove everything due at ``now``, batch after batch, until a batch comes back short."""
    batch = max(1, batch)
    gone: list[Vanished] = []
    while True:
        done = delete_expired(session, now=now, batch=batch)
        gone.extend(done)
        if len(done) < batch:
            return gone


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _referenced(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` an attachment (file or thumbnail) or an avatar still names."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        found.update(
            session.exec(
                select(Attachment.storage_key).where(col(Attachment.storage_key).in_(chunk))
            ).all()
        )
        found.update(
            k
            for k in session.exec(
                select(Attachment.thumbnail_key).where(col(Attachment.thumbnail_key).in_(chunk))
            ).all()
            if k
        )
        found.update(
            k
            for k in session.exec(
                select(User.avatar_key).where(col(User.avatar_key).in_(chunk))
            ).all()
            if k
        )
    return found


def delete_orphan_files(session: Session, *, older_than: datetime) -> int:
    """Delete stored files older than ``older_than`` that no row names; returns the count.

    Young files are kept whatever their state: an upload writes its file before its row.
    """
    cutoff = older_than.timestamp()
    candidates = [key for key, mtime in storage.iter_stored_keys() if mtime < cutoff]
    if not candidates:
        return 0
    referenced = _referenced(session, candidates)
    return storage.delete_keys(k for k in candidates if k not in referenced)
