"""Timer periods: the presets people pick, and the custom text they type."""

from __future__ import annotations

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
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_period(text: str) -> int | None:
    """Seconds from "90s", "10m", "2h", "3d", "1w" (or plain seconds); ``None`` if unreadable."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        return None
    unit = raw[-1] if raw[-1] in _UNITS else "s"
    number = raw[:-1] if raw[-1] in _UNITS else raw
    if not number.isdigit() or len(number) > 9:
        return None
    return int(number) * _UNITS[unit]
