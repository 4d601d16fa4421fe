"""One-to-one conversations: the conversation row, reading pages of history, the sidebar,
unread counts, receipts and deletion (sending is ``sending.py``).

Why it is built this way:
- Only friends talk. Every entry point resolves the other person through
  ``friends.access_friend``, which answers ``NotFound`` for a stranger, a blocked pair or a
  missing user alike, so nothing here reveals who exists.
- A message is *visible* while ``deleted_at`` is unset and ``expires_at`` is unset or still in
  the future. Every read filters on that with the current time, so a late sweep can never
  expose an expired message; the sweep only reclaims space.
- History pages use keyset pagination on ``(conversation_id, id)`` (never OFFSET), newest
  first; the UI reverses a page for display.
- Read receipts follow Signal: a user who turns receipts off sends none and sees none.
- An ``after_read`` timer starts when the recipient first reads the message: ``mark_read``
  sets ``expires_at = read_at + timer`` in the same transaction (until then ``expires_at`` is
  the bound ``sending.py`` wrote).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    exists,
    or_,
)
from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate
from sqlmodel import Session, col, func, select, update

from iris_reflex import clock
from iris_reflex.db import HotStatement
from iris_reflex.errors import NotFound
from iris_reflex.models import Conversation, Message, MessageKind, TimerMode, User
from iris_reflex.models.types import UTCDateTime
from iris_reflex.services import auth, expiry, friends, pairs, users
from iris_reflex.services.auth import Identity
from iris_reflex.services.expiry import visible
from iris_reflex.services.message_views import (
    MessageView,
    receipts_shared_clause,
    shared_receipts,
    view_of,
    with_attachments,
)
from iris_reflex.services.users import PublicUser

PAGE_DEFAULT = 50
PAGE_MAX = 100


@dataclass(frozen=True)
class ConversationSummary:
    """A sidebar row: the friend, the newest visible message and the unread count."""

    conversation_id: int
    friend: PublicUser
    last_message: MessageView | None
    unread: int
    last_activity: datetime


@dataclass(frozen=True)
class ReadReceipt:
    """Messages a reader has just read, for the sender's screens."""

    conversation_id: int
    reader_id: int
    sender_id: int
    message_ids: list[int]
    read_at: datetime
    sender_may_see: bool
    # When the first after-read countdown this read started ends (None: it started none).
    first_deadline: datetime | None = None


@dataclass(frozen=True)
class ArrivalStatus:
    """Whether a tab may show a new message it was handed."""

    signed_in: bool  # False: the tab's session ended, it gets nothing
    shown: bool  # still there to be shown (not deleted or expired, still friends)


# The statements every message runs, built once with placeholders so that SQLAlchemy reuses
# their cache key and compiled SQL (building them per call cost more CPU than the database
# took to answer them).
_NOW = bindparam("now", type_=UTCDateTime)
_ID = bindparam("id", type_=Integer)
_CONVERSATION_OF = select(Conversation).where(
    Conversation.user_low_id == bindparam("low", type_=Integer),
    Conversation.user_high_id == bindparam("high", type_=Integer),
)
_VISIBLE_MESSAGE = select(Message).where(Message.id == _ID, visible(_NOW))
_NO_BOUND = 2**62
_READER = bindparam("reader_id", type_=Integer)
_FRIEND = bindparam("friend_id", type_=Integer)
_SESSION_ID = bindparam("session_id", type_=String)
_USERS = User.metadata.tables["users"]
# The mark-read statements are plain SQL on the table (the ORM's bulk-update path cost more
# CPU than the database took to run them).
_MESSAGES = Message.metadata.tables["messages"]


# The id, timer mode and period of each message read, and whether receipts are shared.
_MarkRead = ReturningUpdate[int | None, str | None, int | None, bool]


def _mark_read_statement(*also: ColumnElement[bool]) -> _MarkRead:
    """``UPDATE ... RETURNING`` that marks the reader's unread visible messages of a
    conversation read (up to an id), only where ``also`` holds, and says which and whether
    the two share receipts."""
    return (
        update(_MESSAGES)
        .where(
            _MESSAGES.c.conversation_id == bindparam("in_conversation", type_=Integer),
            _MESSAGES.c.recipient_id == _READER,
            _MESSAGES.c.read_at.is_(None),
            visible(_NOW),
            _MESSAGES.c.id <= bindparam("up_to_id", type_=BigInteger),
            *also,
        )
        .values(read_at=_NOW)
        .returning(
            _MESSAGES.c.id,
            _MESSAGES.c.timer_mode,
            _MESSAGES.c.timer_seconds,
            receipts_shared_clause(_READER, _FRIEND).label("receipts_shared"),
        )
    )


_MARK_READ = HotStatement(_mark_read_statement())
# A message arriving in a tab that has it open: the tab's session and the friendship are
# checked in the same statement that reads it (one statement where there were three).
_READ_ON_ARRIVAL = HotStatement(
    _mark_read_statement(
        auth.live_session_clause(user_id=_READER, session_id=_SESSION_ID, now=_NOW),
        friends.friends_clause(_READER, _FRIEND),
    )
)
# ``_READ_ON_ARRIVAL`` as a statement of its own, no transaction around it: only when no
# message it would read starts an after-read countdown (whose deadline is a second UPDATE
# that must commit with it). Else it reads nothing, and the transaction does it.
_COUNTING_DOWN = _MESSAGES.alias("counting_down")
_READ_ON_ARRIVAL_ALONE = HotStatement(
    _mark_read_statement(
        auth.live_session_clause(user_id=_READER, session_id=_SESSION_ID, now=_NOW),
        friends.friends_clause(_READER, _FRIEND),
        ~exists().where(
            _COUNTING_DOWN.c.conversation_id == bindparam("in_conversation", type_=Integer),
            _COUNTING_DOWN.c.recipient_id == _READER,
            _COUNTING_DOWN.c.read_at.is_(None),
            _COUNTING_DOWN.c.id <= bindparam("up_to_id", type_=BigInteger),
            _COUNTING_DOWN.c.timer_mode == TimerMode.AFTER_READ.value,
        ),
    )
)
# The same checks for a message arriving in a tab that does not have it open.
_ARRIVAL_STATUS = HotStatement(
    sql_select(
        auth.live_session_clause(user_id=_READER, session_id=_SESSION_ID, now=_NOW),
        and_(
            exists().where(_MESSAGES.c.id == _ID, visible(_NOW)),
            friends.friends_clause(_READER, _FRIEND),
        ),
    )
)


def between(session: Session, a_id: int, b_id: int, *, create: bool) -> Conversation | None:
    """The conversation of ``a`` and ``b``; with ``create``, opened (and flushed, not committed)
    if it does not exist yet, with ``a``'s default timer."""
    low, high = pairs.ordered(a_id, b_id)
    found = session.exec(_CONVERSATION_OF, params={"low": low, "high": high}).first()
    if found is not None or not create:
        return found
    conversation = Conversation(user_low_id=low, user_high_id=high, created_at=clock.now())
    # A new conversation starts with its creator's default timer (set in Settings).
    creator = session.get(User, a_id)
    if creator is not None and creator.default_timer_seconds:
        conversation.timer_seconds = creator.default_timer_seconds
        conversation.timer_mode = TimerMode.FROM_SEND.value
        conversation.timer_set_by_id = a_id
    session.add(conversation)
    try:
        session.flush()
    except IntegrityError:
        # The friend opened the conversation at the same moment; use theirs.
        session.rollback()
        return between(session, a_id, b_id, create=False)
    return conversation


@dataclass(frozen=True)
class Opened:
    """A conversation with a friend, as sending needs it."""

    friend_id: int
    conversation_id: int
    timer_seconds: int | None
    timer_mode: str | None


_CONVERSATIONS = Conversation.metadata.tables["conversations"]
_ACTOR = bindparam("actor_id", type_=Integer)
# The friend gate and the pair's conversation in one statement (sending's hot path).
_FRIEND_AND_CONVERSATION = HotStatement(
    sql_select(
        _USERS.c.id,
        _CONVERSATIONS.c.id,
        _CONVERSATIONS.c.timer_seconds,
        _CONVERSATIONS.c.timer_mode,
    )
    .select_from(
        _USERS.outerjoin(
            _CONVERSATIONS,
            or_(
                and_(
                    _CONVERSATIONS.c.user_low_id == _ACTOR,
                    _CONVERSATIONS.c.user_high_id == _USERS.c.id,
                ),
                and_(
                    _CONVERSATIONS.c.user_high_id == _ACTOR,
                    _CONVERSATIONS.c.user_low_id == _USERS.c.id,
                ),
            ),
        )
    )
    .where(
        _USERS.c.username_key == bindparam("key", type_=String),
        friends.friends_clause(_ACTOR, _USERS.c.id),
    )
)


def open_with_friend(session: Session, *, actor_id: int, username: str) -> Opened:
    """The conversation with a friend (``friends.access_friend``'s gate), opened if it is
    their first message (flushed, not committed): one statement when it exists.

    Raises:
        NotFound: as ``friends.access_friend``.
    """
    params = {"key": users.username_key(username), "actor_id": actor_id}
    row = _FRIEND_AND_CONVERSATION.run(session, params).first()
    if row is None:
        raise NotFound(friends.NO_SUCH_CONVERSATION)
    friend_id, conversation_id, timer_seconds, timer_mode = row
    if conversation_id is None:
        created = between(session, actor_id, friend_id, create=True)
        assert created is not None and created.id is not None
        return Opened(friend_id, created.id, created.timer_seconds, created.timer_mode)
    return Opened(friend_id, conversation_id, timer_seconds, timer_mode)


@dataclass(frozen=True)
class Page:
    """A page of visible messages, newest first, and whether older visible ones exist."""

    messages: list[MessageView]
    has_older: bool


def read_page(
    session: Session,
    *,
    actor_id: int,
    username: str,
    before_id: int | None = None,
    limit: int = PAGE_DEFAULT,
) -> Page:
    """A page of visible messages, newest first, older than ``before_id`` when given; one
    row more is read to know whether an older page exists."""
    friend = friends.access_friend(session, actor_id=actor_id, username=username)
    assert friend.id is not None
    conversation = between(session, actor_id, friend.id, create=False)
    if conversation is None:
        return Page([], False)
    limit = max(1, min(limit, PAGE_MAX))
    query = select(Message).where(Message.conversation_id == conversation.id, visible(clock.now()))
    if before_id is not None:
        query = query.where(col(Message.id) < before_id)
    rows = session.exec(query.order_by(col(Message.id).desc()).limit(limit + 1)).all()
    shared = shared_receipts(session, actor_id, friend.id)
    views = [view_of(m, viewer_id=actor_id, receipts_shared=shared) for m in rows[:limit]]
    return Page(with_attachments(session, views), has_older=len(rows) > limit)


def list_messages(
    session: Session,
    *,
    actor_id: int,
    username: str,
    before_id: int | None = None,
    limit: int = PAGE_DEFAULT,
) -> list[MessageView]:
    """A page of visible messages, newest first, older than ``before_id`` when given."""
    return read_page(
        session, actor_id=actor_id, username=username, before_id=before_id, limit=limit
    ).messages


def _visible_message(session: Session, message_id: int, now: datetime) -> Message | None:
    """The message with this id if it is visible at ``now`` (``expiry.visible``), else ``None``."""
    return session.exec(_VISIBLE_MESSAGE, params={"id": message_id, "now": now}).first()


def get_message(session: Session, *, actor_id: int, message_id: int) -> MessageView:
    """One visible message of a conversation the actor is in; ``NotFound`` otherwise."""
    message = _visible_message(session, message_id, clock.now())
    if message is None or actor_id not in (message.sender_id, message.recipient_id):
        raise NotFound("No such message.")
    other = pairs.other(message.sender_id, message.recipient_id, me=actor_id)
    try:
        friends.check_friend_id(session, actor_id=actor_id, user_id=other)
    except NotFound:
        raise NotFound("No such message.") from None
    view = view_of(
        message, viewer_id=actor_id, receipts_shared=shared_receipts(session, actor_id, other)
    )
    return with_attachments(session, [view])[0]


def list_conversations(session: Session, *, actor_id: int) -> list[ConversationSummary]:
    """The actor's conversations with current friends, newest visible activity first.

    A fixed number of statements whatever the number of conversations: the friends, the
    actor's receipt setting, one query for every conversation's newest visible message,
    unread count and the friend's receipt setting (correlated subqueries on the
    ``(conversation_id, id)`` and unread indexes), and one for the previews' files.
    """
    now = clock.now()
    current = {f.id: f for f in friends.list_friends(session, actor_id=actor_id)}
    mine = session.exec(select(User.read_receipts).where(User.id == actor_id)).first()
    newest_visible = (
        select(Message.id)
        .where(Message.conversation_id == Conversation.id, visible(now))
        .order_by(col(Message.id).desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    unread = (
        select(func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == Conversation.id,
            Message.recipient_id == actor_id,
            col(Message.read_at).is_(None),
            visible(now),
        )
        .correlate(Conversation)
        .scalar_subquery()
    )
    other_id = case(
        (col(Conversation.user_low_id) == actor_id, Conversation.user_high_id),
        else_=Conversation.user_low_id,
    )
    their_receipts = (
        select(User.read_receipts).where(User.id == other_id).correlate(Conversation)
    ).scalar_subquery()
    last = aliased(Message)
    rows = session.exec(
        select(Conversation, last, unread, their_receipts)
        .outerjoin(last, col(last.id) == newest_visible)
        .where(
            or_(
                col(Conversation.user_low_id) == actor_id,
                col(Conversation.user_high_id) == actor_id,
            )
        )
    ).all()
    summaries: list[ConversationSummary] = []
    for conversation, message, unread_count, theirs in rows:
        friend = current.get(
            pairs.other(conversation.user_low_id, conversation.user_high_id, me=actor_id)
        )
        if friend is None:
            continue
        shared = bool(mine) and bool(theirs)
        assert conversation.id is not None
        summaries.append(
            ConversationSummary(
                conversation_id=conversation.id,
                friend=friend,
                last_message=view_of(message, viewer_id=actor_id, receipts_shared=shared)
                if message
                else None,
                unread=int(unread_count or 0),
                last_activity=message.created_at if message else conversation.created_at,
            )
        )
    summaries.sort(key=lambda s: (s.last_activity, s.conversation_id), reverse=True)
    previews = with_attachments(session, [s.last_message for s in summaries if s.last_message])
    by_id = {v.id: v for v in previews}
    return [
        replace(s, last_message=by_id[s.last_message.id]) if s.last_message else s
        for s in summaries
    ]


def mark_read(
    session: Session, *, actor_id: int, username: str, up_to_id: int | None = None
) -> ReadReceipt | None:
    """Mark the friend's visible messages to the actor as read (up to ``up_to_id``).

    Returns what changed, for the sender's screens, or ``None`` when nothing was unread.
    """
    friend = friends.access_friend(session, actor_id=actor_id, username=username)
    assert friend.id is not None
    conversation = between(session, actor_id, friend.id, create=False)
    if conversation is None or conversation.id is None:
        return None
    return _read_unread(
        session,
        _MARK_READ,
        actor_id=actor_id,
        friend_id=friend.id,
        conversation_id=conversation.id,
        up_to_id=up_to_id,
    )


def read_on_arrival(
    session: Session, *, identity: Identity, message: MessageView, alone: bool = False
) -> ReadReceipt | None:
    """A message just arrived in a tab of its recipient that has its conversation open: it
    is read now, with any earlier one still unread there. The hot path's ``mark_read``: one
    ``UPDATE ... RETURNING`` that also checks the tab's session and the friendship. ``None``
    when nothing was read (already read, gone, no longer friends, or the session ended:
    ``arrival_status`` tells which).

    ``alone``: the statement runs on its own (``session`` in autocommit), so it reads nothing
    when a message it would read starts an after-read countdown (that deadline is a second
    ``UPDATE``, which must commit with the read): the caller then reads in a transaction."""
    if message.recipient_id != identity.user_id:
        return None
    return _read_unread(
        session,
        _READ_ON_ARRIVAL_ALONE if alone else _READ_ON_ARRIVAL,
        actor_id=identity.user_id,
        friend_id=message.sender_id,
        conversation_id=message.conversation_id,
        up_to_id=message.id,
        session_id=identity.session_id,
    )


def arrival_status(session: Session, *, identity: Identity, message: MessageView) -> ArrivalStatus:
    """For a tab about to show a message it was handed: is its session still live, and is
    the message still there (not deleted, not expired) between friends. One statement."""
    friend_id = pairs.other(message.sender_id, message.recipient_id, me=identity.user_id)
    params = {
        "reader_id": identity.user_id,
        "friend_id": friend_id,
        "session_id": identity.session_id,
        "id": message.id,
        "now": clock.now(),
    }
    signed_in, shown = _ARRIVAL_STATUS.run(session, params).one()
    return ArrivalStatus(signed_in=bool(signed_in), shown=bool(signed_in) and bool(shown))


def _read_unread(
    session: Session,
    statement: HotStatement,
    *,
    actor_id: int,
    friend_id: int,
    conversation_id: int,
    up_to_id: int | None,
    session_id: str | None = None,
) -> ReadReceipt | None:
    """Mark the actor's unread visible messages of the conversation read, committed. One
    ``UPDATE ... RETURNING`` (``_mark_read_statement``) says which; after-read countdowns
    then start, one more UPDATE per distinct period, in the same transaction."""
    now = clock.now()
    params = {
        "in_conversation": conversation_id,
        "reader_id": actor_id,
        "friend_id": friend_id,
        "now": now,
        # Nothing newer than the newest id: "up to" the end when no bound is given.
        "up_to_id": up_to_id if up_to_id is not None else _NO_BOUND,
    }
    if session_id is not None:
        params["session_id"] = session_id
    rows = statement.run(session, params).all()
    if not rows:
        session.rollback()
        return None
    countdowns: dict[int, list[int]] = {}
    for message_id, mode, seconds, _shared in rows:
        if mode == TimerMode.AFTER_READ.value and seconds:
            countdowns.setdefault(seconds, []).append(message_id)
    for seconds, timed_ids in countdowns.items():
        session.exec(
            update(Message)
            .where(col(Message.id).in_(timed_ids))
            .values(expires_at=now + timedelta(seconds=seconds))
        )
    session.commit()
    return ReadReceipt(
        conversation_id=conversation_id,
        reader_id=actor_id,
        sender_id=friend_id,
        message_ids=sorted(int(row[0]) for row in rows),
        read_at=now,
        sender_may_see=bool(rows[0][3]),
        first_deadline=now + timedelta(seconds=min(countdowns)) if countdowns else None,
    )


def delete_for_everyone(session: Session, *, actor_id: int, message_id: int) -> MessageView:
    """The sender deletes their own message: hidden at once, then its row is removed.

    The row is first marked ``deleted_at`` and committed (invisible from then on), then
    removed; a crash in between leaves a marked row that the next sweep removes.

    Raises:
        NotFound: not the actor's own visible message.
    """
    now = clock.now()
    message = _visible_message(session, message_id, now)
    if message is None or message.sender_id != actor_id or message.kind != MessageKind.TEXT.value:
        raise NotFound("No such message.")
    view = view_of(message, viewer_id=actor_id, receipts_shared=False)
    message.deleted_at = now
    session.add(message)
    session.commit()
    purge_messages(session, [message_id])
    return view


def purge_messages(session: Session, message_ids: list[int]) -> int:
    """Remove message rows and their attachments' files. Idempotent; returns rows removed.

    Trusts its input: callers pass only ids that are already hidden (deleted or expired).
    The same code path as the expiry sweep (``expiry.purge``): files first, then rows.
    """
    return len(expiry.purge(session, message_ids))
