"""Sending, reading, timing and deleting messages, announced after commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from iris_reflex.db import forget_deleted
from iris_reflex.jobs import sweeper
from iris_reflex.live import outbox
from iris_reflex.live.events import ConversationsChanged, MessageSent, MessagesRead
from iris_reflex.services import conversations, sending
from iris_reflex.services.auth import Identity
from iris_reflex.services.conversations import ReadReceipt
from iris_reflex.services.message_views import MessageView, read_by_recipient
from iris_reflex.services.sending import Sent


def send_message(
    db: Session,
    *,
    actor_id: int,
    username: str,
    body: str,
    timer_seconds: int | None = None,
    timer_mode: str | None = None,
    attachment_ids: list[int] | None = None,
    skip_token: str | None = None,
) -> Sent:
    """Send, then: the recipient's tabs show it, the sender's other tabs refresh, and the
    sweeper wakes for its deadline."""
    sent = sending.check_send_message(
        db,
        actor_id=actor_id,
        username=username,
        body=body,
        timer_seconds=timer_seconds,
        timer_mode=timer_mode,
        attachment_ids=attachment_ids or [],
    )
    _announce_sent(sent, skip_token)
    return sent


def send_on_known_route(
    db: Session,
    *,
    identity: Identity,
    username: str,
    body: str,
    timer_seconds: int | None = None,
    timer_mode: str | None = None,
    skip_token: str | None = None,
) -> Sent | None:
    """``send_message``'s hot path, in one statement that checks ``identity``'s session too
    (``sending.send_on_known_route``); None when the full path must run."""
    sent = sending.send_on_known_route(
        db,
        identity=identity,
        username=username,
        body=body,
        timer_seconds=timer_seconds,
        timer_mode=timer_mode,
    )
    if sent is not None:
        _announce_sent(sent, skip_token)
    return sent


def _announce_sent(sent: Sent, skip_token: str | None) -> None:
    sweeper.wake_at(sent.message.expires_at)
    outbox.publish(MessageSent(sent.message), skip_token=skip_token)


def set_conversation_timer(
    db: Session,
    *,
    actor_id: int,
    username: str,
    seconds: int | None,
    mode: str,
    skip_token: str | None = None,
) -> Sent:
    """A conversation's default timer changed: both people see the notice."""
    sent = sending.set_conversation_timer(
        db, actor_id=actor_id, username=username, seconds=seconds, mode=mode
    )
    outbox.publish(
        ConversationsChanged((sent.recipient_id, sent.message.sender_id)), skip_token=skip_token
    )
    return sent


def delete_for_everyone(
    db: Session, *, actor_id: int, message_id: int, skip_token: str | None = None
) -> MessageView:
    """The message leaves both people's screens, and the database's files."""
    view = conversations.delete_for_everyone(db, actor_id=actor_id, message_id=message_id)
    forget_deleted()
    outbox.publish(ConversationsChanged((view.recipient_id, view.sender_id)), skip_token=skip_token)
    return view


def mark_read(
    db: Session,
    *,
    actor_id: int,
    username: str,
    up_to_id: int | None = None,
    skip_token: str | None = None,
) -> ReadReceipt | None:
    """Mark read; the reader's other tabs and (with shared receipts) the sender hear of it,
    and after-read countdowns may have started, so the sweeper looks again."""
    receipt = conversations.mark_read(db, actor_id=actor_id, username=username, up_to_id=up_to_id)
    if receipt is not None:
        _announce_read(receipt, skip_token)
    return receipt


@dataclass(frozen=True)
class Arrival:
    """What a tab may do with a new message handed to it by the fan-out."""

    signed_in: bool  # False: the tab's session ended, it gets nothing
    shown: MessageView | None  # the message to show (read now if it was), None if gone


def arrive(
    db: Session, *, identity: Identity, message: MessageView, read: bool, skip_token: str
) -> Arrival:
    """For a tab about to show ``message``, under the tab's lock: is its session still live,
    is the message still there between friends, and (``read``: its conversation is open in
    the tab) it is read now. One statement in the usual case (read on arrival), two when
    nothing was read.

    A deletion or expiry committed before this is seen here; one committed after it pushes
    a re-read that takes the tab's lock later, so a removed message never stays on screen.
    """
    receipt = (
        conversations.read_on_arrival(db, identity=identity, message=message) if read else None
    )
    return _arrival(db, identity, message, receipt, skip_token)


def arrive_alone(
    db: Session, *, identity: Identity, message: MessageView, read: bool, skip_token: str
) -> Arrival | None:
    """``arrive`` in one statement of its own (``db`` in autocommit, no ``BEGIN`` and
    ``COMMIT``): the usual case. None when it read nothing (a message that starts an
    after-read countdown, one already read, an ended session or friendship): ``arrive`` then
    runs in a transaction and finds out which."""
    if not read:
        return _arrival(db, identity, message, None, skip_token)  # a read: one statement
    receipt = conversations.read_on_arrival(db, identity=identity, message=message, alone=True)
    return None if receipt is None else _arrival(db, identity, message, receipt, skip_token)


def _arrival(
    db: Session,
    identity: Identity,
    message: MessageView,
    receipt: ReadReceipt | None,
    skip_token: str,
) -> Arrival:
    if receipt is not None:
        _announce_read(receipt, skip_token)
        if message.id in receipt.message_ids:
            return Arrival(signed_in=True, shown=read_by_recipient(message, receipt.read_at))
    status = conversations.arrival_status(db, identity=identity, message=message)
    return Arrival(signed_in=status.signed_in, shown=message if status.shown else None)


def _announce_read(receipt: ReadReceipt, skip_token: str | None) -> None:
    sweeper.wake_at(receipt.first_deadline)  # the after-read countdowns it started
    outbox.publish(
        MessagesRead(
            reader_id=receipt.reader_id,
            sender_id=receipt.sender_id,
            sender_may_see=receipt.sender_may_see,
            message_ids=tuple(receipt.message_ids),
        ),
        skip_token=skip_token,
    )


def messages_vanished(people: set[int]) -> None:
    """The sweep deleted messages between these people: their screens drop them."""
    if people:
        outbox.publish(ConversationsChanged(tuple(sorted(people))))
