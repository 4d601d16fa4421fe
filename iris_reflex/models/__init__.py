"""SQLModel tables only: no rules live here."""

from iris_reflex.models.enums import FriendshipStatus, MessageKind, Theme, TimerMode
from iris_reflex.models.tables import (
    Attachment,
    Block,
    Conversation,
    Friendship,
    LoginFailure,
    Message,
    Passkey,
    PasskeyChallenge,
    RateCounter,
    RecoveryCode,
    TotpSecret,
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
    "Passkey",
    "PasskeyChallenge",
    "RateCounter",
    "RecoveryCode",
    "Theme",
    "TimerMode",
    "TotpSecret",
    "UsedHandoff",
    "User",
    "UserSession",
]
