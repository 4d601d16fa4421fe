"""Publishing after commit: events reach the fan-out on the bound loop, from any thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from iris_reflex.live import outbox
from iris_reflex.live.events import Event, FriendsChanged, MessageSent
from iris_reflex.services.message_views import MessageView

SENT = MessageSent(
    MessageView(
        id=3,
        conversation_id=1,
        sender_id=1,
        recipient_id=2,
        kind="text",
        body="hi",
        created_at=datetime(2026, 11, 30, tzinfo=UTC),
        expires_at=None,
        timer_seconds=None,
        timer_mode=None,
        read_at=None,
    )
)


@pytest.fixture(autouse=True)
def unbound() -> Iterator[None]:
    outbox.unbind()
    yield
    outbox.unbind()


def test_without_a_running_app_an_event_is_dropped_not_raised():
    # nothing bound: nobody to tell
    outbox.publish(SENT)


def test_events_published_from_the_loop_and_from_a_worker_thread_are_all_delivered():
    delivered: list[tuple[Event, str | None]] = []

    async def deliver(event: Event, skip_token: str | None) -> None:
        delivered.append((event, skip_token))

    async def scenario() -> None:
        outbox.bind(deliver)
        outbox.publish(SENT, skip_token="tab-a")
        worker = threading.Thread(target=outbox.publish, args=(FriendsChanged((3, 4)),))
        worker.start()
        await asyncio.to_thread(worker.join)
        await asyncio.sleep(0)  # the thread's hand-over runs on the loop's next turn
        await outbox.settle()

    asyncio.run(scenario())
    assert delivered == [
        (SENT, "tab-a"),
        (FriendsChanged((3, 4)), None),
    ]


def test_a_failing_fan_out_is_logged_and_later_events_still_go_out(caplog):
    delivered: list[Event] = []

    async def deliver(event: Event, _skip: str | None) -> None:
        if isinstance(event, MessageSent):
            raise RuntimeError("redis is down")
        delivered.append(event)

    async def scenario() -> None:
        outbox.bind(deliver)
        outbox.publish(SENT)
        outbox.publish(FriendsChanged((1, 2)))
        await outbox.settle()

    asyncio.run(scenario())
    assert "live fan-out of MessageSent failed" in caplog.text
    assert delivered == [FriendsChanged((1, 2))]


def test_recording_keeps_events_instead_of_delivering_them():
    with outbox.record() as seen:
        outbox.publish(FriendsChanged((1, 2)), skip_token="t")
    assert seen == [(FriendsChanged((1, 2)), "t")]
