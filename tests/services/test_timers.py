"""Timer periods: the range, parsing what people type, and the words the notices use."""

from __future__ import annotations

import pytest

from iris_reflex.errors import Invalid
from iris_reflex.services import timers


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (5, "5 seconds"),
        (30, "30 seconds"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (90, "90 seconds"),
        (300, "5 minutes"),
        (3600, "1 hour"),
        (5400, "90 minutes"),
        (7200, "2 hours"),
        (8 * 3600, "8 hours"),
        (86400, "1 day"),
        (86400 + 1, "86401 seconds"),
        (3 * 86400, "3 days"),
        (7 * 86400, "1 week"),
        (14 * 86400, "2 weeks"),
        (28 * 86400, "4 weeks"),
        (30 * 86400, "30 days"),
        (365 * 86400, "365 days"),
        (0, "0 seconds"),
    ],
)
def test_describe_period_uses_the_largest_unit_that_divides_evenly(seconds, words):
    assert timers.describe_period(seconds) == words


def test_describe_period_refuses_a_negative_period():
    with pytest.raises(ValueError):
        timers.describe_period(-1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("3d", 3 * 86400),
        ("1w", 604800),
        ("45", 45),
        (" 2 H ", 7200),
        ("", None),
        ("h", None),
        ("1.5h", None),
        ("-5s", None),
        ("10y", None),
        ("1234567890", None),
    ],
)
def test_parse_period_reads_a_number_and_an_optional_unit(text, seconds):
    assert timers.parse_period(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "90s"), (600, "10m"), (7200, "2h"), (86400, "1d"), (1209600, "2w"), (5400, "90m")],
)
def test_period_text_is_read_back_by_parse_period(seconds, text):
    assert timers.period_text(seconds) == text
    assert timers.parse_period(text) == seconds


def test_every_preset_is_a_valid_timer_or_off():
    presets = [value for value, _ in timers.TIMER_CHOICES if value not in ("default", "custom")]
    assert presets[0] == "0"
    assert all(timers.validate_timer(int(value)) == int(value) for value in presets[1:])
    assert timers.DEFAULT_TIMER_CHOICES == timers.TIMER_CHOICES[1:]


@pytest.mark.parametrize("seconds", [1, 4, 365 * 86400 + 1, -5])
def test_a_timer_outside_5_seconds_to_365_days_is_invalid(seconds):
    with pytest.raises(Invalid):
        timers.validate_timer(seconds)
