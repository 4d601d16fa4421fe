"""The pure row builders: what bubbles, separators and sizes say, without any state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from iris_reflex.services.message_views import MessageView
from iris_reflex.state import rows

BERLIN = rows.zone("Europe/Berlin")


def _view(n: int, at: datetime, sender: int = 1, kind: str = "text") -> MessageView:
    return MessageView(
        id=n,
        conversation_id=1,
        sender_id=sender,
        recipient_id=3 - sender,
        kind=kind,
        body=f"m{n}",
        created_at=at,
        expires_at=None,
        timer_seconds=None,
        timer_mode=None,
        read_at=None,
    )


def test_day_text_reads_in_the_viewers_zone():
    today = date(2026, 3, 10)
    late_evening_utc = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # already the 10th in Berlin
    assert rows.day_text(late_evening_utc, BERLIN, today) == "Today"
    assert rows.day_text(late_evening_utc, rows.zone("UTC"), today) == "Yesterday"
    assert rows.day_text(datetime(2026, 3, 1, 12, tzinfo=UTC), BERLIN, today) == (
        "Sunday, 01 March 2026"
    )


def test_an_unknown_zone_falls_back_to_utc():
    assert rows.zone("Not/AZone") == rows.zone("UTC")
    assert rows.zone("../../etc/passwd") == rows.zone("UTC")


def test_sizes_read_as_people_read_them():
    assert [rows.size_text(n) for n in (512, 12 * 1024, int(3.4 * 1024 * 1024))] == [
        "512 B",
        "12 KB",
        "3.4 MB",
    ]


def test_ids_from_the_browser_must_fit_a_row():
    assert [rows.as_id(v) for v in ("7", 7, "0", "-1", "1.5", "abc", None, 2**31)] == [
        7,
        7,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


def test_message_rows_separate_days_and_group_a_senders_close_messages():
    start = datetime(2026, 3, 9, 23, 50, tzinfo=UTC)
    views = [
        _view(1, start),
        _view(2, start + timedelta(minutes=4)),  # close: grouped
        _view(3, start + timedelta(minutes=20)),  # too late: a new group (and a new day)
        _view(4, start + timedelta(minutes=21), sender=2),  # another sender
        _view(5, start + timedelta(minutes=22), sender=2, kind="timer"),  # a notice never groups
    ]
    shown = rows.message_rows(views, viewer_id=1, tz=rows.zone("UTC"), today=date(2026, 3, 10))
    assert [(r.id, r.day, r.show_day, r.grouped, r.mine, r.notice) for r in shown] == [
        (1, "Yesterday", True, False, True, False),
        (2, "Yesterday", False, True, True, False),
        (3, "Today", True, False, True, False),
        (4, "Today", False, False, False, False),
        (5, "Today", False, False, False, True),
    ]
    assert [r.status for r in shown] == ["sent", "sent", "sent", "", ""]
