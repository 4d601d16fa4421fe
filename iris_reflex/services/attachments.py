"""A message's files as the two people of its conversation see them.

Read-only and below ``conversations``: the conversation service attaches these views to the
messages it returns; who may fetch the bytes is decided in ``downloads``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, bindparam
from sqlmodel import Session, col, select

from iris_reflex.models import Attachment
from iris_reflex.services.media_types import kind_of


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


# Built once (every message shown is looked up): SQLAlchemy reuses its cache key and SQL.
_ATTACHMENTS_OF = (
    select(Attachment)
    .where(col(Attachment.message_id).in_(bindparam("ids", expanding=True, type_=Integer)))
    .order_by(col(Attachment.id))
)


def views_for_messages(
    session: Session, message_ids: Iterable[int]
) -> dict[int, tuple[AttachmentView, ...]]:
    """Each message's attachments in upload order (one query); trusts its caller's check."""
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    found: dict[int, list[AttachmentView]] = {}
    rows = session.exec(_ATTACHMENTS_OF, params={"ids": ids}).all()
    for row in rows:
        assert row.message_id is not None
        found.setdefault(row.message_id, []).append(AttachmentView.of(row))
    return {mid: tuple(views) for mid, views in found.items()}


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
