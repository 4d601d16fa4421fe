"""A message as each of its two people sees it: receipts are shown only when shared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from iris_reflex.models import Message, TimerMode
from iris_reflex.services.message_views import view_of
from iris_reflex.services.timers import AFTER_READ_UNREAD_LIMIT

SENT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
READ = SENT + timedelta(minutes=7)


def read_after_read_message() -> Message:
    """Ada (1) sent it to Bob (2); Bob read it, which started a 60-second countdown."""
    return Message(
        id=10,
        conversation_id=1,
        sender_id=1,
        recipient_id=2,
        body="secret",
        created_at=SENT,
        timer_seconds=60,
        timer_mode=TimerMode.AFTER_READ.value,
        read_at=READ,
        expires_at=READ + timedelta(seconds=60),
    )


def test_the_reader_always_sees_the_real_deadline_and_read_time():
    view = view_of(read_after_read_message(), viewer_id=2, receipts_shared=False)
    assert (view.read_at, view.expires_at) == (READ, READ + timedelta(seconds=60))


def test_without_shared_receipts_the_sender_sees_neither_the_read_time_nor_the_deadline():
    view = view_of(read_after_read_message(), viewer_id=1, receipts_shared=False)
    assert view.read_at is None
    assert view.expires_at == SENT + AFTER_READ_UNREAD_LIMIT


def test_with_shared_receipts_the_sender_sees_both():
    view = view_of(read_after_read_message(), viewer_id=1, receipts_shared=True)
    assert (view.read_at, view.expires_at) == (READ, READ + timedelta(seconds=60))
