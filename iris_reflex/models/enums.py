"""Enumerations stored as short strings (portable across SQLite and PostgreSQL)."""

from __future__ import annotations

from enum import StrEnum


class FriendshipStatus(StrEnum):
    """A pending request, or an accepted friendship. Declined and cancelled rows are deleted."""

    PENDING = "pending"
    ACCEPTED = "accepted"


class TimerMode(StrEnum):
    """When a timed message's countdown starts."""

    FROM_SEND = "from_send"
    AFTER_READ = "after_read"


class MessageKind(StrEnum):
    """A user's message, or a notice written by Iris (e.g. "Ada set the timer to 1 hour")."""

    TEXT = "text"
    NOTICE = "notice"


class Theme(StrEnum):
    """A user's colour scheme."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"
