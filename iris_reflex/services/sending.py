"""Sending into a conversation: a message, or the notice of a changed timer.

Why it is built this way:
- Only friends talk: both entry points resolve the other person through the gate of
  ``friends.access_friend`` (one ``NotFound`` for a stranger, a blocked pair or a missing
  user), then open the conversation row if it is the pair's first message
  (``conversations.between``); a message does both in one statement
  (``conversations.open_with_friend``).
- The text is checked here, the same way for every client: trimmed, not empty (unless files
  come with it), at most ``MAX_BODY`` characters, real text with no NUL (which PostgreSQL
  cannot store). Files are the actor's own pending uploads (``uploads.check_attachable``),
  claimed in the transaction that stores the message.
- Timers come in two modes. ``from_send``: ``expires_at = created_at + timer``. ``after_read``:
  the countdown starts when the recipient first reads the message (``conversations.mark_read``);
  until then ``expires_at`` is a bound, ``created_at + AFTER_READ_UNREAD_LIMIT``, so an unread
  message cannot live forever and every read keeps filtering on ``expires_at`` alone.
- Changing a conversation's default timer writes a notice into the conversation, already
  read, so both people see who changed what and it never counts as unread.
- The hot path (``send_on_known_route``): a text message to a friend one has written to
  before is stored by one statement on its own, no transaction around it, that checks
  again everything the full path checks (the sender's session, the friendship and blocks,
  the conversation and its default timer, taken from the previous send as a guess). When
  anything differs, nothing is stored and the full path runs, and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, bindparam, insert, select
from sqlmodel import Session

from iris_reflex import clock
from iris_reflex.db import HotStatement
from iris_reflex.errors import Invalid, NotFound
from iris_reflex.models import Conversation, Message, MessageKind, TimerMode, User, UserSession
from iris_reflex.services import auth, conversations, friends, pairs, uploads, users
from iris_reflex.services.auth import Identity
from iris_reflex.services.message_views import MessageView, view_of, with_attachments
from iris_reflex.services.timers import (
    describe_period,
    first_expiry,
    validate_timer,
    validate_timer_mode,
)

MAX_BODY = 4000


@dataclass(frozen=True)
class Sent:
    """A stored message and who must hear about it."""

    message: MessageView
    recipient_id: int


_MESSAGES = Message.metadata.tables["messages"]
_INSERT_MESSAGE = HotStatement(insert(_MESSAGES).returning(_MESSAGES.c.id))


def validate_body(body: str) -> str:
    """The text to store (surrounding whitespace trimmed), or ``Invalid``."""
    text = body.strip()
    if not text:
        raise Invalid("A message cannot be empty.")
    if len(text) > MAX_BODY:
        raise Invalid(f"A message can have at most {MAX_BODY:,} characters.")
    if not users.is_text(text):
        raise Invalid("A message must be text (it contains an invalid character).")
    if "\x00" in text:
        # PostgreSQL cannot store NUL in text; refuse it everywhere so both databases agree.
        raise Invalid("A message cannot contain NUL characters.")
    return text


def _asked_timer(seconds: int | None, mode: str | None) -> tuple[int | None, str | None]:
    """The timer and mode the sender asked for, checked (``Invalid`` when impossible); None
    for what was not asked."""
    return (validate_timer(seconds) if seconds is not None else None), validate_timer_mode(mode)


def _message_timer(
    asked: int | None, seconds: int | None, mode: str | None, opened: conversations.Opened
) -> tuple[int | None, str | None]:
    """The message's timer: none asked (``asked`` is None), the conversation's default; an
    explicit 0 means "no timer" for this one. A mode only with a timer."""
    if asked is None:
        seconds = opened.timer_seconds
    if not seconds:
        return seconds, None
    return seconds, mode or opened.timer_mode or TimerMode.FROM_SEND.value


def check_send_message(
    session: Session,
    *,
    actor_id: int,
    username: str,
    body: str,
    timer_seconds: int | None = None,
    timer_mode: str | None = None,
    attachment_ids: Sequence[int] = (),
) -> Sent:
    """Store a message from the actor to a friend, with the actor's pending uploads.

    Args:
        timer_seconds: ``None`` for the conversation's default timer, ``0`` for no timer on
            this message, else 5 seconds to 365 days.
        timer_mode: ``"from_send"`` or ``"after_read"``; ``None`` for the conversation's mode
            (``"from_send"`` when it has none).
        attachment_ids: pending uploads of the actor (``uploads.store_upload``); with files
            the text may be empty.

    Raises:
        NotFound: the username is not the actor's friend (or does not exist).
        Invalid: empty or over-long text, an impossible timer or an unknown mode, too many
            files or a file that is not the actor's pending upload.
    """
    text = validate_body(body) if body.strip() or not attachment_ids else ""
    files = uploads.check_attachable(session, actor_id=actor_id, attachment_ids=attachment_ids)
    explicit_timer, explicit_mode = _asked_timer(timer_seconds, timer_mode)
    conversation = conversations.open_with_friend(session, actor_id=actor_id, username=username)
    now = clock.now()
    seconds, mode = _message_timer(timer_seconds, explicit_timer, explicit_mode, conversation)
    # A plain row and a plain statement, not a model and the ORM's unit of work (a model's
    # construction and dump alone were 2 % of a busy worker's CPU samples). The sender's view
    # of an unread message is the row as written (``view_of``: no read time, the stored
    # deadline), so nothing is read back after the commit.
    unread: dict[str, Any] = {
        "conversation_id": conversation.conversation_id,
        "sender_id": actor_id,
        "recipient_id": conversation.friend_id,
        "kind": MessageKind.TEXT.value,
        "body": text,
        "created_at": now,
        "expires_at": first_expiry(now, seconds, mode),
        "timer_seconds": seconds,
        "timer_mode": mode,
        "read_at": None,
    }
    try:
        message_id: int = _INSERT_MESSAGE.run(session, {**unread, "deleted_at": None}).scalar_one()
        uploads.attach(session, actor_id=actor_id, message_id=message_id, attachment_ids=files)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    view = MessageView(id=message_id, **unread)
    if files:
        view = with_attachments(session, [view])[0]
    _remember_route(actor_id, username, conversation)
    return Sent(message=view, recipient_id=conversation.friend_id)


# What the previous send of each (sender, friend's username) found, for the hot path's
# guess: ids and a timer setting, never text. Checked again by every send that uses it.
_routes: dict[tuple[int, str], conversations.Opened] = {}
ROUTES_MAX = 50_000


def _remember_route(actor_id: int, username: str, opened: conversations.Opened) -> None:
    if len(_routes) >= ROUTES_MAX:
        _routes.clear()
    _routes[(actor_id, users.username_key(username))] = opened


_SESSIONS = UserSession.metadata.tables["user_sessions"]
_CONVERSATIONS = Conversation.metadata.tables["conversations"]
_USERS = User.metadata.tables["users"]
# The new row's values, each a parameter typed as its column (SQLite keeps times as text);
# the sender, the friend and the time are also what the conditions check.
_ROUTE_VALUES = {
    name: bindparam(name, type_=_MESSAGES.c[name].type)
    for name in (
        "conversation_id",
        "sender_id",
        "recipient_id",
        "kind",
        "body",
        "created_at",
        "expires_at",
        "timer_seconds",
        "timer_mode",
    )
}
_ROUTE_SESSION = bindparam("session_id", type_=String)
# The message inserted only if the route still holds: the conversation is the pair's with
# the default timer it had, the username is still the friend's, they are still friends with
# no block, and the sender's session is live. Returns the new id and when that session was
# last noted active (``auth.note_activity``).
_SEND_ON_ROUTE = HotStatement(
    insert(_MESSAGES)
    .from_select(
        list(_ROUTE_VALUES),
        select(*_ROUTE_VALUES.values())
        .select_from(_CONVERSATIONS.join(_USERS, _USERS.c.id == _ROUTE_VALUES["recipient_id"]))
        .where(
            _CONVERSATIONS.c.id == _ROUTE_VALUES["conversation_id"],
            _CONVERSATIONS.c.user_low_id == bindparam("low_id", type_=Integer),
            _CONVERSATIONS.c.user_high_id == bindparam("high_id", type_=Integer),
            _CONVERSATIONS.c.timer_seconds.is_not_distinct_from(
                bindparam("default_seconds", type_=Integer)
            ),
            _CONVERSATIONS.c.timer_mode.is_not_distinct_from(
                bindparam("default_mode", type_=String)
            ),
            _USERS.c.username_key == bindparam("key", type_=String),
            friends.friends_clause(_ROUTE_VALUES["sender_id"], _ROUTE_VALUES["recipient_id"]),
            auth.live_session_clause(
                user_id=_ROUTE_VALUES["sender_id"],
                session_id=_ROUTE_SESSION,
                now=_ROUTE_VALUES["created_at"],
            ),
        ),
    )
    .returning(
        _MESSAGES.c.id,
        select(_SESSIONS.c.last_active_at)
        .where(_SESSIONS.c.id == _ROUTE_SESSION)
        .scalar_subquery(),
    )
)


def send_on_known_route(
    session: Session,
    *,
    identity: Identity,
    username: str,
    body: str,
    timer_seconds: int | None = None,
    timer_mode: str | None = None,
) -> Sent | None:
    """The hot path of ``check_send_message`` for a text message: one statement, committed
    on its own (``session`` is in autocommit), with the session check of ``auth.authenticate``
    in it. ``None`` when this sender has no route to that friend yet, or the route no longer
    holds (the full path then stores the message, or says why not).

    Raises:
        Invalid: as ``check_send_message``, for the text and the timer.
    """
    route = _routes.get((identity.user_id, users.username_key(username)))
    if route is None:
        return None
    text = validate_body(body)
    explicit_timer, explicit_mode = _asked_timer(timer_seconds, timer_mode)
    seconds, mode = _message_timer(timer_seconds, explicit_timer, explicit_mode, route)
    now = clock.now()
    low, high = pairs.ordered(identity.user_id, route.friend_id)
    unread: dict[str, Any] = {
        "conversation_id": route.conversation_id,
        "sender_id": identity.user_id,
        "recipient_id": route.friend_id,
        "kind": MessageKind.TEXT.value,
        "body": text,
        "created_at": now,
        "expires_at": first_expiry(now, seconds, mode),
        "timer_seconds": seconds,
        "timer_mode": mode,
    }
    params = {
        **unread,
        "low_id": low,
        "high_id": high,
        "default_seconds": route.timer_seconds,
        "default_mode": route.timer_mode,
        "key": users.username_key(username),
        "session_id": identity.session_id,
    }
    row = _SEND_ON_ROUTE.run(session, params).first()
    if row is None:
        _routes.pop((identity.user_id, users.username_key(username)), None)
        return None
    message_id, last_active_at = row
    auth.note_activity(session, identity.session_id, last_active_at, now=now)
    view = MessageView(id=message_id, read_at=None, **unread)
    return Sent(message=view, recipient_id=route.friend_id)


def set_conversation_timer(
    session: Session,
    *,
    actor_id: int,
    username: str,
    seconds: int | None,
    mode: str = TimerMode.FROM_SEND.value,
) -> Sent:
    """Set (or with ``None``/``0`` turn off) the default timer of the conversation with a friend.

    Later messages without a timer of their own use it; earlier messages keep theirs. A notice
    ("Ada set disappearing messages to 1 hour.") is written into the conversation, already
    read, and returned as the sent message.

    Raises:
        NotFound: the username is not the actor's friend (or does not exist).
        Invalid: an impossible period or an unknown mode.
    """
    period = validate_timer(seconds)
    timer_mode = validate_timer_mode(mode)
    friend = friends.access_friend(session, actor_id=actor_id, username=username)
    assert friend.id is not None
    actor = session.get(User, actor_id)
    if actor is None:
        raise NotFound(friends.NO_SUCH_CONVERSATION)
    conversation = conversations.between(session, actor_id, friend.id, create=True)
    assert conversation is not None and conversation.id is not None
    now = clock.now()
    name = actor.display_name or actor.username
    if period is None:
        text = f"{name} turned off disappearing messages."
    else:
        when = " after reading" if timer_mode == TimerMode.AFTER_READ.value else ""
        text = f"{name} set disappearing messages to {describe_period(period)}{when}."
    conversation.timer_seconds = period
    conversation.timer_mode = timer_mode if period is not None else None
    conversation.timer_set_by_id = actor_id
    session.add(conversation)
    notice = Message(
        conversation_id=conversation.id,
        sender_id=actor_id,
        recipient_id=friend.id,
        kind=MessageKind.NOTICE.value,
        body=text,
        created_at=now,
        read_at=now,  # a notice is never unread
    )
    session.add(notice)
    session.commit()
    session.refresh(notice)
    return Sent(
        message=view_of(notice, viewer_id=actor_id, receipts_shared=False),
        recipient_id=friend.id,
    )
