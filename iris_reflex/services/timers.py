"""Disappearing-message periods: the allowed range, the first deadline, and periods as text.

Plain Python with no Reflex import, so the services, the composer's picker and the settings
page read, write and check a period the same way: ``"2h"`` is parsed here, shown back as
``"2h"`` here, and announced as "2 hours" here. One table of units serves all three.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from iris_reflex.errors import Invalid
from iris_reflex.models import TimerMode

MIN_TIMER_SECONDS = 5
MAX_TIMER_SECONDS = 365 * 24 * 3600
# An after-read message nobody reads still vanishes this long after it was sent.
AFTER_READ_UNREAD_LIMIT = timedelta(days=30)

# (suffix, seconds, word), largest first.
_UNITS = (
    ("w", 7 * 24 * 3600, "week"),
    ("d", 24 * 3600, "day"),
    ("h", 3600, "hour"),
    ("m", 60, "minute"),
    ("s", 1, "second"),
)
_SUFFIXES = {suffix: size for suffix, size, _ in _UNITS}

# The composer's picker: a value (seconds, or "default" / "custom") and its label.
TIMER_CHOICES: list[tuple[str, str]] = [
    ("default", "Chat default"),
    ("0", "Off"),
    ("30", "30 seconds"),
    ("300", "5 minutes"),
    ("3600", "1 hour"),
    ("28800", "8 hours"),
    ("86400", "1 day"),
    ("604800", "1 week"),
    ("2419200", "4 weeks"),
    ("custom", "Custom…"),
]
# The settings page's picker without "Chat default": it *is* the default for new chats.
DEFAULT_TIMER_CHOICES: list[tuple[str, str]] = [(v, t) for v, t in TIMER_CHOICES if v != "default"]


def validate_timer(seconds: int | None) -> int | None:
    """A disappearing-message period in seconds, ``None`` for off (0 also means off).

    Raises:
        Invalid: outside 5 seconds to 365 days.
    """
    if seconds is None or seconds == 0:
        return None
    if not MIN_TIMER_SECONDS <= seconds <= MAX_TIMER_SECONDS:
        raise Invalid("A timer runs from 5 seconds to 365 days.")
    return seconds


def validate_timer_mode(mode: str | None) -> str | None:
    """A known timer mode (``"from_send"`` or ``"after_read"``), ``None`` when not given.

    Raises:
        Invalid: any other value.
    """
    if mode is None:
        return None
    try:
        return TimerMode(mode).value
    except ValueError:
        raise Invalid("A timer starts when a message is sent or when it is read.") from None


def first_expiry(created_at: datetime, seconds: int | None, mode: str | None) -> datetime | None:
    """A new message's ``expires_at``: the deadline, or for after-read the unread bound."""
    if not seconds:
        return None
    if mode == TimerMode.AFTER_READ.value:
        return created_at + AFTER_READ_UNREAD_LIMIT
    return created_at + timedelta(seconds=seconds)


def parse_period(text: str) -> int | None:
    """Seconds from "90s", "10m", "2h", "3d", "1w" (or plain seconds); ``None`` if unreadable."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        return None
    unit = raw[-1] if raw[-1] in _SUFFIXES else "s"
    number = raw[:-1] if raw[-1] in _SUFFIXES else raw
    if not number.isdigit() or len(number) > 9:
        return None
    return int(number) * _SUFFIXES[unit]


def period_text(seconds: int) -> str:
    """A period as the custom timer field reads it: ``90`` is "90s", ``7200`` is "2h"."""
    for suffix, size, _ in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def describe_period(seconds: int) -> str:
    """A period in words, in the largest unit that divides it evenly.

    ``3600`` is ``"1 hour"``, ``7200`` ``"2 hours"``, ``90`` ``"90 seconds"``.

    Raises:
        ValueError: a negative period.
    """
    if seconds < 0:
        raise ValueError("A period cannot be negative.")
    if seconds == 0:
        return "0 seconds"
    for _, size, word in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {word}" if count == 1 else f"{count} {word}s"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")
