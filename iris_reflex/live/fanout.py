"""Who hears about what: the one place that turns an event into pushes to open tabs.

Every action, whether typed in the web UI, sent through the JSON API or done by the expiry
sweep, publishes an event (``live.outbox``) and ends up here, so a message sent with ``curl``
reaches open tabs exactly like one typed in the browser. ``skip_token`` is the tab that acted:
it has already updated itself, and a push must never lock its own tab.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from iris_reflex.db import session_scope
from iris_reflex.live import push
from iris_reflex.live.events import (
    Change,
    ConversationsChanged,
    Event,
    FriendsChanged,
    MessageSent,
    MessagesRead,
    PresenceChanged,
    ProfileChanged,
    ReceiptsChanged,
    SessionsEnded,
    TabChange,
    Typing,
)
from iris_reflex.services import friends


def _friend_ids(user_id: int) -> list[int]:
    with session_scope() as db:
        return [f.id for f in friends.list_friends(db, actor_id=user_id)]


async def _each(user_ids: Sequence[int], change: Change, skip: str | None) -> None:
    """Each user once, all at the same time: a slow tab of one never holds up another."""
    await asyncio.gather(
        *(push.push_to_user(u, change, skip_token=skip) for u in dict.fromkeys(user_ids))
    )


async def deliver(event: Event, skip_token: str | None = None) -> None:
    """Push ``event`` to every tab that must hear about it."""
    skip = skip_token
    match event:
        case MessageSent(message=view):
            # The recipient's tabs show it (and read it if it is open); the sender's others
            # too. Each tab checks, under its lock, that it may still show it
            # (``message_actions.arrive``). Tabs on other workers were handed it already.
            arrived = Change(TabChange.MESSAGE_ARRIVED, message=view)
            recipient_tabs, sender_tabs = await push.hand_over(
                ((view.recipient_id, arrived), (view.sender_id, arrived)), skip_token=skip
            )
            await asyncio.gather(
                push.push_to_tabs(view.recipient_id, recipient_tabs, arrived),
                push.push_to_tabs(view.sender_id, sender_tabs, arrived),
            )
        case ConversationsChanged(user_ids=user_ids):
            await _each(user_ids, Change(TabChange.CONVERSATIONS), skip)
        case MessagesRead(
            reader_id=reader_id, sender_id=sender_id, sender_may_see=may_see, message_ids=ids
        ):
            # The reader's other tabs drop their unread counts; the sender sees the receipt
            # when both share receipts (ticks on those messages: nothing else changed).
            unread = Change(TabChange.CONVERSATIONS)
            receipts = Change(TabChange.RECEIPTS, message_ids=ids)
            told = [(reader_id, unread), *([(sender_id, receipts)] if may_see else [])]
            tabs = await push.hand_over(told, skip_token=skip)
            # ``skip`` is the reader's tab: the sender's receipts fold across all of them.
            pushes = [push.push_to_user(reader_id, unread, skip_token=skip, tokens=tabs[0])]
            if may_see:
                pushes.append(push.push_to_user(sender_id, receipts, tokens=tabs[1]))
            await asyncio.gather(*pushes)
        case FriendsChanged(user_ids=user_ids):
            await _each(user_ids, Change(TabChange.FRIENDS), skip)
        case ProfileChanged(user_id=user_id):
            # Friends' lists and headers show the new name, status or picture; so do the
            # user's own other tabs.
            friend_ids = await asyncio.to_thread(_friend_ids, user_id)
            await _each([*friend_ids, user_id], Change(TabChange.FRIENDS), skip)
        case ReceiptsChanged(user_id=user_id):
            # Receipts now show (or not) on both sides of every conversation of the user.
            friend_ids = await asyncio.to_thread(_friend_ids, user_id)
            await _each([*friend_ids, user_id], Change(TabChange.CONVERSATIONS), skip)
        case PresenceChanged(user_id=user_id):
            friend_ids = await asyncio.to_thread(_friend_ids, user_id)
            await _each(friend_ids, Change(TabChange.PRESENCE), skip)
        case Typing(to_user_id=to_user_id, username=username):
            await push.push_to_user(to_user_id, Change(TabChange.TYPING, username))
        case SessionsEnded(user_id=user_id):
            await push.sign_out_ended_sessions(user_id, skip_token=skip)
