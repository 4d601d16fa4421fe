"""What happened, as the live layer hears it: ids and kinds, and one new message.

An action publishes one of these after its transaction has committed; ``live.fanout``
decides who hears about it. Nothing is ever pushed that a read by that viewer would not
return (expiry, deletion and blocks are applied per viewer): a tab either re-reads what it
may show through the services as its own user, or (a new message, the hot path) is handed
the message as its sender stored it, the same for both people while it is unread, and checks
in one statement, under its lock, that its session is live, the two are still friends and
the message is still there before showing it. Events stay in the process that published
them (``live.outbox``); only Reflex's deltas cross to other workers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from iris_reflex.services.message_views import MessageView


class TabChange(enum.StrEnum):
    """What an open tab must re-read."""

    # A new message in one of the user's conversations: a friend's (read it if it is on
    # screen) or the user's own, sent from another tab.
    MESSAGE_ARRIVED = "message_arrived"
    CONVERSATIONS = "conversations"  # messages, receipts or the sidebar changed
    FRIENDS = "friends"  # friends, requests, blocks or a friend's profile changed
    PRESENCE = "presence"  # a friend came or went
    TYPING = "typing"  # the open conversation's friend is typing
    RECEIPTS = "receipts"  # the friend read these of the tab's own messages
    RESYNC = "resync"  # everything: pushes may have been lost (a backend worker died)


@dataclass(frozen=True)
class Change:
    """One change for one tab; ``username`` names the typing friend, ``message_ids`` the
    messages just read, ``message`` the new message as this tab's user sees it (without it,
    the tab re-reads its page)."""

    kind: TabChange
    username: str = ""
    message_ids: tuple[int, ...] = ()
    message: MessageView | None = None


@dataclass(frozen=True)
class MessageSent:
    """A message was stored. It travels as its sender's transaction wrote it: a new message
    is unread, so both people see it alike (``message_views.view_of``), and each tab still
    checks its session, the friendship and that the message is there before showing it."""

    message: MessageView


@dataclass(frozen=True)
class ConversationsChanged:
    """Deletions, timer notices, expiries, receipts shown differently: both sides re-read."""

    user_ids: tuple[int, ...]


@dataclass(frozen=True)
class MessagesRead:
    reader_id: int
    sender_id: int
    sender_may_see: bool  # both share receipts
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class FriendsChanged:
    """A request, answer, removal or block between these users."""

    user_ids: tuple[int, ...]


@dataclass(frozen=True)
class ProfileChanged:
    """The user's name, status or picture changed: their friends' lists re-read."""

    user_id: int


@dataclass(frozen=True)
class ReceiptsChanged:
    """The user turned read receipts on or off: both sides of their chats show it."""

    user_id: int


@dataclass(frozen=True)
class PresenceChanged:
    user_id: int


@dataclass(frozen=True)
class Typing:
    to_user_id: int
    username: str


@dataclass(frozen=True)
class SessionsEnded:
    """Sessions of this user were revoked: their open tabs are emptied and signed out."""

    user_id: int


Event = (
    MessageSent
    | ConversationsChanged
    | MessagesRead
    | FriendsChanged
    | ProfileChanged
    | ReceiptsChanged
    | PresenceChanged
    | Typing
    | SessionsEnded
)
