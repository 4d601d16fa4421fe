"""Who must be told what after an action has committed, written once for every caller.

Why it is built this way:
- The Reflex state and the JSON API perform the same actions through the same services, so
  the fan-out that follows each one (the recipient's tabs, the actor's other tabs, the expiry
  sweeper) lives here instead of being repeated in every caller. A message sent with ``curl``
  reaches open tabs exactly like one typed in the browser.
- Each function takes what the service returned (ids, never content) and is awaited *after*
  the commit: by the API as a background task once the response is sent, by the state as a
  spawned task once its own event has released its tab's lock. ``skip_token`` is the acting
  tab (it updates itself; a push must never lock its own tab); the API has no tab and passes
  nothing, so every tab of the actor is refreshed.
- The action has already happened when these run: a failing push is logged, never raised.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ParamSpec

from iris_reflex.db import session_scope
from iris_reflex.jobs import sweeper
from iris_reflex.live import push
from iris_reflex.services import friends

if TYPE_CHECKING:
    from iris_reflex.services.conversations import MessageView, ReadReceipt, Sent

log = logging.getLogger("iris.notify")

P = ParamSpec("P")


def _logged(fn: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
    """Run ``fn``; log instead of raising, since the change it announces is already stored."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a lost push must not turn a done action into an error
            log.exception("live notification %s failed", fn.__name__)

    return wrapper


def _chat():  # type: ignore[no-untyped-def]
    # Imported late: the chat state imports this module.
    from iris_reflex.state.chat import ChatState

    return ChatState


@_logged
async def message_sent(sent: Sent, *, skip_token: str | None = None) -> None:
    """A new message: the recipient's tabs show it (and read it if it is open), the sender's
    other tabs refresh, and the sweeper wakes for its deadline."""
    chat = _chat()
    sweeper.wake_at(sent.message.expires_at)
    await push.push_to_user(sent.recipient_id, chat._on_message_arrived)
    await push.push_to_user(
        sent.message.sender_id, chat._on_conversation_changed, skip_token=skip_token
    )


@_logged
async def conversation_changed(*user_ids: int, skip_token: str | None = None) -> None:
    """These users' tabs re-read their conversations (a deletion, a notice, receipts)."""
    chat = _chat()
    for user_id in user_ids:
        await push.push_to_user(user_id, chat._on_conversation_changed, skip_token=skip_token)


async def timer_set(sent: Sent, *, skip_token: str | None = None) -> None:
    """A conversation's default timer changed: both people see the notice."""
    await conversation_changed(sent.recipient_id, sent.message.sender_id, skip_token=skip_token)


async def message_deleted(view: MessageView, *, skip_token: str | None = None) -> None:
    """A message was deleted for everyone: it leaves both people's screens."""
    await conversation_changed(view.recipient_id, view.sender_id, skip_token=skip_token)


@_logged
async def read_receipt(receipt: ReadReceipt, *, skip_token: str | None = None) -> None:
    """Messages were read: the reader's other tabs drop their unread counts, the sender sees
    the receipt when both share receipts, and after-read countdowns may have started."""
    chat = _chat()
    sweeper.recheck()
    await push.push_to_user(receipt.reader_id, chat._on_conversation_changed, skip_token=skip_token)
    if receipt.sender_may_see:
        await push.push_to_user(receipt.sender_id, chat._on_conversation_changed)


@_logged
async def friends_changed(*user_ids: int, skip_token: str | None = None) -> None:
    """A request arrived or was answered, a friendship ended, a block changed, a friend
    renamed themselves: these users' tabs re-read friends and conversations."""
    chat = _chat()
    for user_id in user_ids:
        await push.push_to_user(user_id, chat._on_friends_changed, skip_token=skip_token)


@_logged
async def profile_changed(user_id: int, *, skip_token: str | None = None) -> None:
    """The user's display name changed: their friends' lists and their own other tabs."""
    with session_scope() as db:
        friend_ids = [f.id for f in friends.list_friends(db, actor_id=user_id)]
    await friends_changed(*friend_ids, user_id, skip_token=skip_token)
