"""SQLModel tables only: no rules live here."""

from iris_reflex.models.enums import FriendshipStatus, MessageKind, Theme, TimerMode
from iris_reflex.models.tables import (
    Attachment,
    Block,
    Conversation,
    Friendship,
    LoginFailure,
    Message,
    UsedHandoff,
    User,
    UserSession,
)

__all__ = [
    "Attachment",
    "Block",
    "Conversation",
    "Friendship",
    "FriendshipStatus",
    "LoginFailure",
    "Message",
    "MessageKind",
    "Theme",
    "TimerMode",
    "UsedHandoff",
    "User",
    "UserSession",
]
