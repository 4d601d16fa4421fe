"""A message as one of its two people sees it: the view every read returns.

Read receipts follow Signal: a user who turns receipts off sends none and sees none, so the
view hides ``read_at`` from the sender unless both share receipts, and for an after-read
timer it shows the unread bound instead of the deadline that would reveal the read time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, Integer, bindparam, func
from sqlmodel import Session, select

from iris_reflex.models import Message, TimerMode, User
from iris_reflex.services.attachments import AttachmentView, views_for_messages
from iris_reflex.services.timers import AFTER_READ_UNREAD_LIMIT


@dataclass(frozen=True)
class MessageView:
    """A message as one participant may see it."""

    id: int
    conversation_id: int
    sender_id: int
    recipient_id: int
    kind: str
    body: str
    created_at: datetime
    expires_at: datetime | None
    timer_seconds: int | None
    timer_mode: str | None
    read_at: datetime | None
    attachments: tuple[AttachmentView, ...] = field(default=())


def receipts_shared_clause(
    a_id: BindParameter[int], b_id: BindParameter[int]
) -> ColumnElement[bool]:
    """SQL that is true when both users send and see read receipts (either can turn them off
    for both): ``shared_receipts`` as a condition, for a statement that needs it alongside
    its own work (``conversations.read_on_arrival``)."""
    users = User.metadata.tables["users"]
    both = (
        select(func.count())
        .select_from(users)
        .where(users.c.id.in_([a_id, b_id]), users.c.read_receipts.is_(True))
        .scalar_subquery()
    )
    return both == 2


# Built once (runs on every message): SQLAlchemy reuses its cache key and compiled SQL.
_RECEIPTS_SHARED = select(
    receipts_shared_clause(bindparam("a", type_=Integer), bindparam("b", type_=Integer))
)


def shared_receipts(session: Session, a_id: int, b_id: int) -> bool:
    """Whether both users send and see read receipts (either can turn them off for both)."""
    return bool(session.execute(_RECEIPTS_SHARED, {"a": a_id, "b": b_id}).scalar())


def view_of(message: Message, *, viewer_id: int, receipts_shared: bool) -> MessageView:
    """The message as ``viewer_id`` may see it: without shared receipts the sender learns
    neither when it was read nor (after-read timers) the deadline that would reveal it."""
    assert message.id is not None
    show_read = message.recipient_id == viewer_id or receipts_shared
    expires_at = message.expires_at
    if (
        not show_read
        and message.timer_mode == TimerMode.AFTER_READ.value
        and message.read_at is not None
    ):
        # read_at + timer would tell the sender when it was read; without shared receipts
        # the sender sees the unread bound instead (it still vanishes for them on time).
        expires_at = message.created_at + AFTER_READ_UNREAD_LIMIT
    return MessageView(
        id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        recipient_id=message.recipient_id,
        kind=message.kind,
        body=message.body,
        created_at=message.created_at,
        expires_at=expires_at,
        timer_seconds=message.timer_seconds,
        timer_mode=message.timer_mode,
        read_at=message.read_at if show_read else None,
    )


def read_by_recipient(view: MessageView, read_at: datetime) -> MessageView:
    """The recipient's view of a message they read at ``read_at``: an after-read countdown
    ends ``timer_seconds`` later (as ``conversations.mark_read`` stores it)."""
    expires_at = view.expires_at
    if view.timer_mode == TimerMode.AFTER_READ.value and view.timer_seconds:
        expires_at = read_at + timedelta(seconds=view.timer_seconds)
    return replace(view, read_at=read_at, expires_at=expires_at)


def with_attachments(session: Session, views: list[MessageView]) -> list[MessageView]:
    """The same views, each carrying its attachments (one query for all)."""
    found = views_for_messages(session, (v.id for v in views))
    return [replace(v, attachments=found[v.id]) if v.id in found else v for v in views]
